"""The growth chain's steps in log coordinates: the exact process in ln X, the change of variables, and a
chain with an outage long enough to need them, filtered and smoothed."""

import numpy as np
import pytest
from scipy.linalg import expm

from algaflow.fusion.growth import filter_growth, smooth_growth
from algaflow.fusion.growth_log_step import (
    change_to_log,
    from_log_coordinates,
    log_process_factor,
    to_log_coordinates,
)
from algaflow.fusion.growth_model import GrowthModel


def log_space_discretisation(model: GrowthModel, dt: float) -> tuple[np.ndarray, np.ndarray]:
    """Van Loan (1978): F = e^{AΔt} and Q_ℓ = ∫₀^Δt e^{As} L Lᵀ e^{Aᵀs} ds from the block exponential, for
    dℓ = μ dt + σ_ℓ dW, dμ = σ_μ dW, db = d dt + σ_b dW, dd = σ_d dW."""
    n = 4
    drift = np.zeros((n, n))
    drift[0, 1] = drift[2, 3] = 1.0
    diffusion = np.diag([model.log_biomass_diffusion, model.growth_rate_diffusion, model.baseline_diffusion,
                         model.drift_diffusion])
    block = np.zeros((2 * n, 2 * n))
    block[:n, :n], block[:n, n:], block[n:, n:] = -drift, diffusion, drift.T
    exponential = expm(block * dt)
    return expm(drift * dt), exponential[n:, n:].T @ exponential[:n, n:]


def test_log_process_factor_is_the_exact_discretisation():
    """The log-coordinate factor is the Van Loan discretisation, plus the known shift ln(1 − f) + u Δt/2 of
    ℓ and u of μ."""
    model = GrowthModel()
    dt, survival, rate_input = 2.5, 0.4, 0.003
    n = 4
    exact_transition, exact_noise = log_space_discretisation(model, dt)
    mean = np.array([np.log(0.3), 0.02, 0.01, 1e-4])
    transition, noise, predicted = np.empty((n, n)), np.empty((n, n)), np.empty(n)
    log_process_factor(dt, survival, rate_input, model.as_array(), mean, transition, noise, predicted)
    np.testing.assert_allclose(transition, exact_transition, rtol=1e-12)
    np.testing.assert_allclose(noise, exact_noise, rtol=1e-9, atol=1e-18)
    expected = exact_transition @ mean + [np.log(survival) + 0.5 * rate_input * dt, rate_input, 0.0, 0.0]
    np.testing.assert_allclose(predicted, expected, rtol=1e-12)


def test_change_of_variables_is_the_delta_method_and_round_trips_exactly():
    model = GrowthModel().as_array()
    rng = np.random.default_rng(0)
    root = rng.normal(size=(4, 4)) * [0.05, 0.01, 0.01, 1e-4]
    mean, cov = np.array([0.4, 0.03, 0.01, 0.0]), root @ root.T
    log_mean, log_cov = np.empty(4), np.empty((4, 4))
    used = to_log_coordinates(mean, cov, model, log_mean, log_cov)
    jacobian = np.diag([1 / 0.4, 1.0, 1.0, 1.0])  # d ln X / dX at the mean
    assert used == 0.4
    np.testing.assert_allclose(log_cov, jacobian @ cov @ jacobian.T, rtol=1e-12)
    assert log_mean[0] == pytest.approx(np.log(0.4), rel=1e-15)
    assert from_log_coordinates(log_mean, log_cov) == pytest.approx(0.4, rel=1e-15)
    np.testing.assert_allclose(log_mean, mean, rtol=1e-15)
    np.testing.assert_allclose(log_cov, cov, rtol=1e-12)
    # at or below zero biomass the change is taken at one OD noise sd through the slope
    floored = to_log_coordinates(np.array([-0.02, 0.0, 0.0, 0.0]), cov, model, log_mean, log_cov)
    assert floored == pytest.approx(GrowthModel().od_noise_sd / GrowthModel().od_per_g_per_l)
    change_to_log(mean, cov, 0.5, log_mean, log_cov)
    assert log_mean[0] == pytest.approx(np.log(0.5)) and log_cov[0, 0] == pytest.approx(cov[0, 0] / 0.25)


def test_an_outage_is_crossed_in_log_coordinates_filtered_and_smoothed():
    """One-minute OD of an exponential culture (μ = 0.03 1/h) with a 30-hour outage: the step across it is
    taken in ln X (the growth factor e^{0.9} is known only to ±15 %); after it the biomass band covers the
    truth, and the smoother's μ and biomass just before the outage are honest too."""
    rng = np.random.default_rng(3)
    rate = 0.03
    t = np.arange(0.0, 50.0, 1 / 60)
    t = t[(t < 10.0) | (t >= 40.0)]
    biomass = 0.1 * np.exp(rate * t)
    od = biomass + rng.normal(0.0, 0.005, t.size)
    estimates = filter_growth(t[None], od[None])
    after = int(np.searchsorted(t, 40.0))
    assert np.flatnonzero(estimates.log_steps[0]).tolist() == [after]
    for k in (after, after + 60):
        assert abs(estimates.biomass_g_per_l[0, k] - biomass[k]) < 1.96 * estimates.biomass_sd[0, k]
    assert abs(estimates.growth_rate_per_h[0, after + 120] - rate) < 0.005
    smoothed = smooth_growth(estimates)
    before = after - 1
    for state, truth in ((0, biomass[before]), (1, rate)):
        sd = np.sqrt(smoothed.cov[0, before, state, state])
        assert abs(smoothed.mean[0, before, state] - truth) < 1.96 * sd
    assert np.sqrt(smoothed.cov[0, before, 1, 1]) < estimates.growth_rate_sd[0, before]  # the later data helped
