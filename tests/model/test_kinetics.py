import numpy as np
import pytest

from algaflow.model.kinetics import cardinal_ph, cardinal_temperature, light_response, monod, oxygen_inhibition


def test_ctmi_is_one_at_optimum_zero_outside_and_matches_rosso_formula():
    t_min, t_opt, t_max = 5.0, 30.0, 40.0
    assert cardinal_temperature(t_opt, t_min, t_opt, t_max) == pytest.approx(1.0)
    assert cardinal_temperature(np.array([t_min, t_max, -3.0, 45.0]), t_min, t_opt, t_max).tolist() == [0, 0, 0, 0]
    t = 20.0  # Rosso et al. (1993) eq. written out
    expected = (t - t_max) * (t - t_min) ** 2 / (
        (t_opt - t_min) * ((t_opt - t_min) * (t - t_opt) - (t_opt - t_max) * (t_opt + t_min - 2 * t))
    )
    assert cardinal_temperature(t, t_min, t_opt, t_max) == pytest.approx(expected)


def test_cardinal_ph_is_the_cpm_of_rosso_1995():
    ph_min, ph_opt, ph_max = 4.5, 7.5, 10.5
    for ph in (5.0, 7.0, 9.0, 10.2):
        expected = (ph - ph_min) * (ph - ph_max) / ((ph - ph_min) * (ph - ph_max) - (ph - ph_opt) ** 2)
        assert cardinal_ph(ph, ph_min, ph_opt, ph_max) == pytest.approx(expected)


def test_light_oxygen_monod_factors():
    optimum = np.sqrt(16.4 * 687.0)  # Haldane maximum at √(K_s K_i), value 1 / (1 + 2 √(K_s/K_i))
    assert light_response(optimum, 16.4, 1.0, 1 / 687.0) == pytest.approx(1 / (1 + 2 * np.sqrt(16.4 / 687)))
    assert oxygen_inhibition(35.0, 35.0, 2.0) == 0.0
    assert oxygen_inhibition(17.5, 35.0, 2.0) == pytest.approx(0.75)
    assert monod(3.0, 3.0) == 0.5 and monod(-1.0, 3.0) == 0.0
