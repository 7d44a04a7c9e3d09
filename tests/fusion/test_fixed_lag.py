"""Fixed-lag smoothing with late and out-of-order measurements, against the batch filter and RTS smoother
(themselves equal to FilterPy's to 1e-9, tests/fusion/test_gaussian.py)."""

import numpy as np
import pytest

from algaflow.fusion.fixed_lag import FixedLagSmoother
from algaflow.fusion.gaussian import forward_filter, rts_smoother
from algaflow.fusion.growth import N_GROWTH_STATE, GrowthModel, process_factor


def integrated_random_walk(dt: float, q: float = 0.3) -> tuple[np.ndarray, np.ndarray]:
    """Position–velocity chain, exact discretisation of dv = √q dW: composes exactly over split steps."""
    transition = np.array([[1.0, dt], [0.0, 1.0]])
    noise = q * np.array([[dt**3 / 3, dt**2 / 2], [dt**2 / 2, dt]])
    return transition, noise


def batch(times, prior_mean, prior_cov, observation, noise, values):
    """Batch filter + RTS over the whole record: steps at ``times`` (units share them)."""
    steps = len(times)
    dts = np.diff(np.concatenate([[0.0], times]))
    factors = [integrated_random_walk(dt) for dt in dts]
    transition = np.stack([f[0] for f in factors])
    process_noise = np.stack([f[1] for f in factors])
    filtered = forward_filter(prior_mean, prior_cov, transition, process_noise, observation, noise, values)
    assert values.shape[1] == steps
    return filtered, rts_smoother(filtered, transition)


@pytest.fixture
def record():
    rng = np.random.default_rng(4)
    units = 3
    times = np.cumsum(rng.uniform(0.1, 1.0, 60))
    position = np.cumsum(rng.normal(0, 1, (units, 60)), axis=1)
    values = position[..., None] + rng.normal(0, 0.5, (units, 60, 1))
    values[rng.random((units, 60, 1)) < 0.2] = np.nan  # each unit misses some samples
    prior_mean = np.zeros((units, 2))
    prior_cov = np.broadcast_to(np.diag([10.0, 1.0]), (units, 2, 2))
    return times, values, prior_mean, prior_cov


H = np.array([[1.0, 0.0]])
R = np.array([[0.25]])


def test_in_order_equals_batch_smoother_inside_the_window(record):
    times, values, prior_mean, prior_cov = record
    smoother = FixedLagSmoother(prior_mean, prior_cov, lag_h=5.0, process=integrated_random_walk)
    for k, time in enumerate(times):
        smoother.measure(time, H, R, values[:, k])
    _, reference = batch(times, prior_mean, prior_cov, H, R, values)
    window_times, smoothed = smoother.smoothed()
    index = np.searchsorted(times, window_times)
    assert window_times[0] >= times[-1] - 5.0 and len(window_times) < len(times)
    np.testing.assert_allclose(smoothed.mean, reference.mean[:, index], rtol=0, atol=1e-9)
    np.testing.assert_allclose(smoothed.cov, reference.cov[:, index], rtol=0, atol=1e-9)


def test_late_and_shuffled_measurements_equal_the_batch_with_them_in_place(record):
    """Every sample arrives up to 3 h late, in random order; the window (lag 4 h) still equals the batch."""
    times, values, prior_mean, prior_cov = record
    rng = np.random.default_rng(5)
    arrival = times + rng.uniform(0, 3.0, times.size)
    smoother = FixedLagSmoother(prior_mean, prior_cov, lag_h=4.0, process=integrated_random_walk)
    for k in np.argsort(arrival):
        smoother.advance(arrival[k] - 3.0)  # the clock moves on before the late sample lands
        assert smoother.measure(times[k], H, R, values[:, k]), smoother.refused
    window_times, smoothed = smoother.smoothed()
    # The clock steps the smoother opened (no measurement) are extra steps: the batch includes them too.
    all_times = np.union1d(times, [t for t in np.sort(arrival) - 3.0 if t > 0])
    full = np.full((values.shape[0], all_times.size, 1), np.nan)
    full[:, np.searchsorted(all_times, times)] = values
    _, reference = batch(all_times, prior_mean, prior_cov, H, R, full)
    index = np.searchsorted(all_times, window_times)
    np.testing.assert_allclose(all_times[index], window_times)
    np.testing.assert_allclose(smoothed.mean, reference.mean[:, index], rtol=0, atol=1e-8)
    np.testing.assert_allclose(smoothed.cov, reference.cov[:, index], rtol=0, atol=1e-8)


def test_inserting_an_empty_step_leaves_the_chain_unchanged(record):
    """An exact process factor composes: a step with no measurement changes no belief at the samples."""
    times, values, prior_mean, prior_cov = record
    plain = FixedLagSmoother(prior_mean, prior_cov, lag_h=100.0, process=integrated_random_walk)
    split = FixedLagSmoother(prior_mean, prior_cov, lag_h=100.0, process=integrated_random_walk)
    for k, time in enumerate(times[:20]):
        plain.measure(time, H, R, values[:, k])
        split.measure(time, H, R, values[:, k])
    split.measure(0.5 * (times[10] + times[11]), H, R, np.full((values.shape[0], 1), np.nan))
    _, a = plain.smoothed()
    split_times, b = split.smoothed()
    keep = np.isin(split_times, times[:20])
    np.testing.assert_allclose(b.mean[:, keep], a.mean, rtol=0, atol=1e-9)
    np.testing.assert_allclose(b.cov[:, keep], a.cov, rtol=0, atol=1e-9)


def test_too_late_measurement_is_refused_with_a_reason(record):
    times, values, prior_mean, prior_cov = record
    smoother = FixedLagSmoother(prior_mean, prior_cov, lag_h=2.0, process=integrated_random_walk)
    for k, time in enumerate(times):
        smoother.measure(time, H, R, values[:, k])
    before = smoother.filtered()[1].copy()
    assert not smoother.measure(times[5], H, R, np.zeros((values.shape[0], 1)))
    assert not smoother.measure(np.nan, H, R, np.zeros((values.shape[0], 1)))
    assert "older than the window" in smoother.refused[0][1]
    np.testing.assert_array_equal(smoother.filtered()[1], before)


def test_late_dry_weight_on_the_growth_chain():
    """A dry weight (DW = X + v, g/L) typed in 6 h after sampling, on the growth chain's process factor
    linearised at X = 0.5 g/L, μ = 0 (a linear chain, as the fixed-lag smoother needs): the smoothed biomass
    at the sample time is pulled to it, and its sd shrinks towards the measurement's."""
    model = GrowthModel().as_array()
    reference = np.array([0.5, 0.0, 0.0, 0.0])

    def growth_process(dt):
        transition, noise = np.empty((N_GROWTH_STATE, N_GROWTH_STATE)), np.empty((N_GROWTH_STATE, N_GROWTH_STATE))
        process_factor(dt, 1.0, 0.0, model, reference, transition, noise, np.empty(N_GROWTH_STATE))
        return transition, noise

    prior_mean = np.array([[0.5, 0.03, 0.0, 0.0]])
    prior_cov = np.diag([0.05, 0.01, 1e-4, 1e-8])[None]
    smoother = FixedLagSmoother(prior_mean, prior_cov, lag_h=12.0, process=growth_process)
    dry_weight = np.array([[1.0, 0.0, 0.0, 0.0]])
    for hour in range(1, 10):
        smoother.advance(float(hour))
    sd_before = np.sqrt(smoother.smoothed()[1].cov[0, 2, 0, 0])
    assert smoother.measure(3.0, dry_weight, np.array([[0.015**2]]), np.array([[0.6]]))
    times, smoothed = smoother.smoothed()
    at = np.searchsorted(times, 3.0)
    assert np.sqrt(smoothed.cov[0, at, 0, 0]) < 0.0151 < sd_before
    assert abs(smoothed.mean[0, at, 0] - 0.6) < 0.005
