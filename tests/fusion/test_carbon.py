import numpy as np
import pytest

from algaflow.fusion.carbon import CO2_PER_CARBON, co2_from_biomass


def test_co2_counts_growth_and_harvested_biomass():
    # 10 L from 0.2 to 1.0 g/L (8 g), harvest 70 % (7 g out, 0.3 left), regrow to 0.8 (5 g): 13 g in all.
    biomass = np.array([0.2, 1.0, 0.3, 0.8])
    fraction = np.array([0.0, 0.0, 0.7, 0.0])
    co2, sd = co2_from_biomass(biomass, np.zeros(4), fraction, volume_l=10.0, carbon_fraction=0.5)
    produced = np.array([0.0, 8.0, 8.0, 13.0])  # 10 × (X − 0.2) + 10 × 0.7 × 1.0
    np.testing.assert_allclose(co2, produced * 0.5 * 44.009 / 12.011, rtol=1e-12)
    assert pytest.approx(3.664, rel=1e-3) == CO2_PER_CARBON  # 44/12
    assert np.all(sd == 0)


def test_co2_uncertainty_adds_the_independent_biomass_errors():
    sd_x = np.array([0.01, 0.02, 0.03])
    _, sd = co2_from_biomass(np.array([0.2, 0.4, 0.2]), sd_x, np.array([0, 0, 0.5]), 1.0, 0.5)
    expected = np.sqrt(sd_x**2 + 0.01**2 + np.array([0, 0, (0.5 * 0.02) ** 2])) * 0.5 * CO2_PER_CARBON
    np.testing.assert_allclose(sd, expected, rtol=1e-12)
    with pytest.raises(ValueError):
        co2_from_biomass(np.ones(2), np.ones(2), np.zeros(2), volume_l=0.0, carbon_fraction=0.5)
