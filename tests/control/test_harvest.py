import numpy as np
import pytest
from scipy.stats import norm

from algaflow.control.harvest import HarvestPolicy, growth_stopped_probability, harvest_ready


def test_probability_is_the_normal_tail_below_the_threshold():
    rate = np.array([0.02, 0.004, -0.01])
    sd = np.array([0.005, 0.002, 0.01])
    expected = norm.cdf(0.004, loc=rate, scale=sd)  # scipy.stats as the reference
    np.testing.assert_allclose(growth_stopped_probability(rate, sd, 0.004), expected, rtol=1e-12)


def test_readiness_has_hysteresis_and_needs_a_dense_culture():
    policy = HarvestPolicy(probability_on=0.9, probability_off=0.5, min_biomass_g_per_l=0.5)
    probability = np.array([[0.2, 0.95, 0.7, 0.6, 0.4, 0.92, 0.95]])
    biomass = np.array([[1.0, 1.0, 1.0, 1.0, 1.0, 0.3, 1.0]])
    ready = harvest_ready(probability, biomass, policy)
    # on at 0.95, stays on through 0.7 and 0.6 (above p_off), off at 0.4, not on while too dilute.
    assert ready.tolist() == [[False, True, True, True, False, False, True]]


def test_policy_refuses_inconsistent_thresholds():
    with pytest.raises(ValueError, match="probability_off"):
        HarvestPolicy(probability_on=0.5, probability_off=0.6)
    with pytest.raises(ValueError, match="fraction"):
        HarvestPolicy(fraction=1.2)


def test_forecast_of_a_linearly_falling_growth_rate_is_exact():
    from algaflow.control.harvest import hours_until_growth_stops

    times = np.arange(0.0, 20.0, 1 / 60)
    growth = 0.05 - 0.002 * times  # reaches θ = 0.01 at t = 20 h
    hours = hours_until_growth_stops(times, growth, 0.01, window_h=3.0)
    settled = times > 3.0
    np.testing.assert_allclose(hours[settled], 20.0 - times[settled], rtol=1e-6)
    assert np.isinf(hours_until_growth_stops(times, 0.05 + 0 * times, 0.01)[-1])
    assert hours_until_growth_stops(times, 0.005 + 0 * times, 0.01)[-1] == 0.0


def test_recommended_fraction_returns_a_logistic_culture_to_half_its_capacity():
    from algaflow.control.harvest import recommended_fraction

    times = np.linspace(0.0, 200.0, 20001)
    rate, capacity = 0.05, 4.0
    biomass = capacity / (1 + (capacity / 0.05 - 1) * np.exp(-rate * times))
    growth = rate * (1 - biomass / capacity)  # μ X = r X (1 − X/K): highest at X* = K/2
    fraction = recommended_fraction(biomass, growth)
    final = biomass[-1]
    assert fraction[-1] == pytest.approx(1 - (capacity / 2) / final, abs=2e-3)
    assert np.all(fraction[biomass < capacity / 2] == 0.0)
