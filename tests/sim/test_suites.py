import numpy as np
import pytest

from algaflow.catalog import SENSORS
from algaflow.fusion.growth import dilution_before_samples
from algaflow.sim.suites import NOISE_FAMILIES, PROFILES, profile_scenario, simulate_cases


def _rate(case, start_h, end_h):
    window = (case.times_h >= start_h) & (case.times_h < end_h)
    return case.growth_rate_per_h[window].mean()


def test_the_scripted_profiles_have_the_shapes_their_names_promise():
    step_up, step_down, decline, harvests = (simulate_cases(p)[0] for p in ("step_up", "step_down", "decline",
                                                                             "harvests"))  # fmt: skip
    assert _rate(step_up, 31, 40) > 2 * _rate(step_up, 20, 29)
    assert _rate(step_down, 31, 40) < 0.5 * _rate(step_down, 20, 29)
    assert _rate(decline, 25, 70) < 0 < _rate(decline, 10, 23)  # lights off: respiration only
    np.testing.assert_allclose(harvests.harvest_times_h, [18.0, 36.0, 54.0, 63.0])
    for t, fraction in zip(harvests.harvest_times_h, harvests.harvest_fractions, strict=True):
        before, after = np.interp([t - 1e-3, t + 1 / 60], harvests.times_h, harvests.biomass_g_per_l)
        assert after / before == pytest.approx(1 - fraction, rel=0.01)
    times, _ = harvests.readings["od750"]
    dilution = dilution_before_samples(times, harvests.harvest_times_h, harvests.harvest_fractions)
    assert np.count_nonzero(dilution) == 4 and sorted(dilution[dilution > 0]) == pytest.approx([0.3, 0.5, 0.6, 0.7])


def test_noise_families_differ_as_described():
    gaussian, heavy, gappy = (simulate_cases("constant", family)[0] for family in NOISE_FAMILIES)
    residual = {}
    for case in (gaussian, heavy):
        times, od = case.readings["od750"]
        biomass, _ = case.truth_at(times)
        residual[case.family] = od - biomass * case.strain.od750_per_g_per_l
    sd = SENSORS["od750"].noise_sd
    assert np.std(residual["gaussian"]) == pytest.approx(sd, rel=0.1)
    assert np.mean(residual["heavy_tailed_bubbles"] > 8 * sd) > 0.01  # bubble spikes
    times, _ = gappy.readings["od750"]
    assert times.size < 0.85 * gaussian.readings["od750"][0].size  # 20 % dropouts and two gaps
    assert np.diff(times).max() > 1.9  # the 2 h gap


def test_unknown_profile_or_family_is_refused_with_the_choices():
    with pytest.raises(ValueError, match="constant"):
        profile_scenario("sideways")
    with pytest.raises(ValueError, match="gaussian"):
        profile_scenario("constant", "pink")
    assert len(PROFILES) >= 10
