"""Sigma-point and EKF-style linearisation against FilterPy's unscented transform and UKF update, and the
OD factor's closed-form moments as the sigma-point rule's limit."""

import numpy as np
from filterpy.kalman import MerweScaledSigmaPoints, UnscentedKalmanFilter, unscented_transform

from algaflow.fusion.growth import GrowthModel
from algaflow.fusion.linearisation import (
    SigmaPointRule,
    jacobian_linearisation,
    linearised_update,
    sigma_point_linearisation,
)
from algaflow.fusion.od_factor import log_od_measurement_factor
from tests.references import gauss_hermite_regression


def range_and_bearing(points: np.ndarray) -> np.ndarray:
    """A strongly non-linear factor of a 4-state (x, y, vx, vy): distance and angle to the origin."""
    return np.stack([np.hypot(points[..., 0], points[..., 1]), np.arctan2(points[..., 1], points[..., 0])], axis=-1)


def random_beliefs(units: int, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    mean = rng.normal(0, 1, (units, n)) + np.array([5.0, 3.0, 0.0, 0.0])[:n]
    roots = rng.normal(0, 0.4, (units, n, n))
    return mean, roots @ np.swapaxes(roots, -1, -2) + 0.05 * np.eye(n)


def test_sigma_points_and_moments_equal_filterpy():
    mean, cov = random_beliefs(5, 4, 0)
    for rule in (SigmaPointRule(), SigmaPointRule(alpha=0.5, beta=2.0, kappa=-1.0), SigmaPointRule(0.1, 2.0, 0.0)):
        reference = MerweScaledSigmaPoints(4, rule.alpha, rule.beta, rule.kappa)
        points = rule.points(mean, cov)
        mean_weights, cov_weights = rule.weights(4)
        np.testing.assert_allclose(mean_weights, reference.Wm, rtol=1e-13)
        np.testing.assert_allclose(cov_weights, reference.Wc, rtol=1e-13)
        for u in range(5):
            np.testing.assert_allclose(points[u], reference.sigma_points(mean[u], cov[u]), rtol=1e-12, atol=1e-12)
            expected_mean, expected_cov = unscented_transform(range_and_bearing(points[u]), reference.Wm, reference.Wc)
            factor = sigma_point_linearisation(mean[u:u + 1], cov[u:u + 1], range_and_bearing, rule)
            np.testing.assert_allclose(factor.predicted[0], expected_mean, rtol=1e-12)
            # Var h = H P Hᵀ + Ω: the regression splits the unscented covariance exactly.
            total = factor.observation[0] @ cov[u] @ factor.observation[0].T + factor.linearisation_noise[0]
            np.testing.assert_allclose(total, expected_cov, rtol=1e-10, atol=1e-12)


def test_update_equals_filterpy_unscented_kalman_filter():
    mean, cov = random_beliefs(4, 4, 1)
    noise = np.diag([0.1**2, 0.02**2])
    rng = np.random.default_rng(2)
    measurement = range_and_bearing(mean) + rng.normal(0, [0.3, 0.05], (4, 2))
    rule = SigmaPointRule(alpha=0.8, beta=2.0, kappa=0.0)
    posterior_mean, posterior_cov = linearised_update(mean, cov, sigma_point_linearisation(mean, cov,
                                                      range_and_bearing, rule), noise, measurement)  # fmt: skip
    for u in range(4):
        points = MerweScaledSigmaPoints(4, rule.alpha, rule.beta, rule.kappa)
        ukf = UnscentedKalmanFilter(4, 2, dt=1.0, hx=lambda x: range_and_bearing(x), fx=lambda x, dt: x,
                                    points=points)  # fmt: skip
        ukf.x, ukf.P, ukf.Q, ukf.R = mean[u].copy(), cov[u].copy(), np.zeros((4, 4)), noise
        ukf.predict()  # identity process, no noise: the prior's own sigma points
        ukf.update(measurement[u])
        np.testing.assert_allclose(posterior_mean[u], ukf.x, rtol=1e-9, atol=1e-10)
        np.testing.assert_allclose(posterior_cov[u], ukf.P, rtol=1e-8, atol=1e-10)


def test_linear_function_is_exact_both_ways():
    mean, cov = random_beliefs(3, 4, 3)
    matrix = np.array([[1.0, -2.0, 0.5, 0.0], [0.0, 1.0, 0.0, 3.0]])

    def linear(points):
        return points @ matrix.T + np.array([1.0, -1.0])

    for factor in (sigma_point_linearisation(mean, cov, linear),
                   jacobian_linearisation(mean, linear, lambda p: np.broadcast_to(matrix, (p.shape[0], 2, 4)))):
        np.testing.assert_allclose(factor.observation, np.broadcast_to(matrix, (3, 2, 4)), atol=1e-10)
        np.testing.assert_allclose(factor.offset, np.broadcast_to([1.0, -1.0], (3, 2)), atol=1e-10)
        np.testing.assert_allclose(factor.linearisation_noise, 0.0, atol=1e-10)


def test_absent_rows_leave_the_belief_unchanged():
    mean, cov = random_beliefs(2, 4, 4)
    factor = sigma_point_linearisation(mean, cov, range_and_bearing)
    posterior_mean, posterior_cov = linearised_update(mean, cov, factor, np.eye(2), np.full((2, 2), np.nan))
    np.testing.assert_allclose(posterior_mean, mean)
    np.testing.assert_allclose(posterior_cov, cov)


def test_log_od_factor_is_the_limit_of_sigma_points():
    """In log coordinates the OD curve's closed-form log-normal moments are the exact statistical linear
    regression: 60-node Gauss–Hermite quadrature of E[h] and Cov(ℓ, h)/P_ℓℓ matches them to 1e-10, and the
    9 default sigma points of the 4-state come within 1–2 % (at sd 0.3 in ln X)."""
    model = GrowthModel(od_per_g_per_l=1.1, od_quadratic=0.05).as_array()
    mean = np.array([np.log(0.4), 0.02, 0.01, 0.0])
    cov = np.diag([0.3**2, 1e-4, 1e-4, 1e-8])
    observation, noise, linear = np.empty((1, 4)), np.empty((1, 1)), np.empty(1)
    predicted = log_od_measurement_factor(mean, cov, 0.5, model, observation, noise, linear)
    expected, slope, _ = gauss_hermite_regression(mean[0], cov[0, 0],
                                                  lambda x: 1.1 * np.exp(x) + 0.05 * np.exp(2 * x))  # fmt: skip
    expected_mean = expected + mean[2]
    np.testing.assert_allclose(predicted, expected_mean, rtol=1e-10)
    np.testing.assert_allclose(observation[0, 0], slope, rtol=1e-10)
    sigma = sigma_point_linearisation(mean[None], cov[None], lambda p: (1.1 * np.exp(p[..., :1])
                                      + 0.05 * np.exp(2 * p[..., :1]) + p[..., 2:3]))  # fmt: skip
    np.testing.assert_allclose(sigma.predicted[0, 0], predicted, rtol=0.01)
    np.testing.assert_allclose(sigma.observation[0, 0, 0], observation[0, 0], rtol=0.02)
