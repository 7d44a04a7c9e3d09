import numpy as np
import pytest

from algaflow.catalog import load_strain
from algaflow.control.alarms import (
    AlarmPolicy,
    degas_threshold_mg_per_l,
    oxygen_growth_loss,
    temperature_growth_loss,
    with_hysteresis,
)

STRAIN = load_strain("chlorella_vulgaris")


def test_oxygen_loss_is_the_power_law_and_the_threshold_its_inverse():
    do = np.array([0.0, 10.0, STRAIN.do_max_mg_per_l, np.nan])
    expected = np.minimum((do / STRAIN.do_max_mg_per_l) ** STRAIN.do_exponent, 1.0)
    np.testing.assert_allclose(oxygen_growth_loss(do, STRAIN)[:3], expected[:3])
    assert np.isnan(oxygen_growth_loss(do, STRAIN)[3])
    threshold = degas_threshold_mg_per_l(STRAIN, 0.2)
    assert oxygen_growth_loss([threshold], STRAIN)[0] == pytest.approx(0.2)


def test_temperature_loss_is_zero_at_the_optimum_and_whole_outside_the_cardinals():
    loss = temperature_growth_loss([STRAIN.t_opt_c, STRAIN.t_max_c + 1, STRAIN.t_min_c - 1], STRAIN)
    np.testing.assert_allclose(loss, [0.0, 1.0, 1.0], atol=1e-12)


def test_hysteresis_switches_on_high_off_low_and_holds_on_missing():
    policy = AlarmPolicy(loss_on=0.2, loss_off=0.1)
    flag = np.array([False])
    seen = []
    for loss in [0.05, 0.15, 0.25, 0.15, np.nan, 0.09, 0.15]:
        flag = with_hysteresis([loss], flag, policy)
        seen.append(bool(flag[0]))
    assert seen == [False, False, True, True, True, False, False]
    with pytest.raises(ValueError):
        AlarmPolicy(loss_on=0.1, loss_off=0.2)
