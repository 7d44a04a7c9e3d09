"""The OD factor in biomass coordinates against independent references: Gauss–Hermite quadrature and a Monte
Carlo regression."""

import numpy as np
import pytest

from algaflow.fusion.growth_model import GrowthModel
from algaflow.fusion.od_factor import biomass_from_signal, od_measurement_factor
from tests.references import gauss_hermite_regression


def test_biomass_od_factor_is_the_statistical_linear_regression():
    """In biomass coordinates the curve a X + c X² + b is quadratic: 60-node Gauss–Hermite quadrature of E[h],
    Cov(X, h)/P_XX and the residual variance matches the closed form to 1e-10."""
    model = GrowthModel(od_per_g_per_l=1.1, od_quadratic=0.05, od_noise_sd=1e-9, od_relative_noise=0.0).as_array()
    mean = np.array([0.4, 0.02, 0.01, 0.0])
    cov = np.diag([0.12**2, 1e-4, 1e-4, 1e-8])
    observation, noise, linear = np.empty((1, 4)), np.empty((1, 1)), np.empty(1)
    predicted = od_measurement_factor(mean, cov, 0.5, model, observation, noise, linear)
    expected, slope, residual = gauss_hermite_regression(mean[0], cov[0, 0], lambda x: 1.1 * x + 0.05 * x**2)
    np.testing.assert_allclose(predicted, expected + mean[2], rtol=1e-10)
    np.testing.assert_allclose(observation[0], [slope, 0.0, 1.0, 0.0], rtol=1e-10)
    np.testing.assert_allclose(noise[0, 0], residual + 1e-18, rtol=1e-8)


def test_statistical_linearisation_matches_monte_carlo_regression():
    """The OD factor's H and linearisation noise are the statistical linear regression of h(z) = a X + c X² + b
    on z under the Gaussian prior: H = Cov(h, z) P⁻¹, Ω = Var h − H P Hᵀ (Monte Carlo reference)."""
    model = GrowthModel(od_per_g_per_l=0.9, od_quadratic=-0.05, od_noise_sd=1e-9, od_relative_noise=0.0).as_array()
    mean = np.array([0.8, 0.03, 0.01, 0.0])
    root = np.array([[0.4, 0, 0, 0], [0.02, 0.01, 0, 0], [0.004, 0, 0.01, 0], [0, 0, 0.001, 0.002]])
    cov = root @ root.T
    observation, noise, measurement = np.empty((1, 4)), np.empty((1, 1)), np.empty(1)
    predicted = od_measurement_factor(mean, cov, 0.7, model, observation, noise, measurement)
    rng = np.random.default_rng(0)
    z = rng.multivariate_normal(mean, cov, 2_000_000)
    h = 0.9 * z[:, 0] - 0.05 * z[:, 0] ** 2 + z[:, 2]
    cross = (z - z.mean(axis=0)).T @ (h - h.mean()) / (h.size - 1)  # Cov(z, h) = P Hᵀ
    assert predicted == pytest.approx(h.mean(), rel=2e-3)
    np.testing.assert_allclose(cov @ observation[0], cross, rtol=0.01, atol=1e-5)
    omega = h.var() - cross @ np.linalg.solve(np.cov(z.T), cross)  # the sample's own regression
    assert noise[0, 0] == pytest.approx(omega, rel=0.05)
    assert measurement[0] == pytest.approx(0.7 - predicted + observation[0] @ mean, rel=1e-12)


def test_the_calibration_curve_is_inverted_to_its_non_negative_root():
    model = GrowthModel(od_per_g_per_l=0.9, od_quadratic=-0.05).as_array()
    for biomass in (0.0, 0.01, 0.5, 3.0):
        signal = 0.9 * biomass - 0.05 * biomass**2
        assert biomass_from_signal(signal, model) == pytest.approx(biomass, rel=1e-12, abs=1e-15)
