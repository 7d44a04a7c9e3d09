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
