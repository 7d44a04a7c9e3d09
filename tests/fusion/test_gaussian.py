"""The forward filter and RTS smoother against FilterPy's KalmanFilter (test-only dependency)."""

import numpy as np
import pytest

from algaflow.fusion.gaussian import forward_filter, rts_smoother, update, update_scalar

filterpy_kalman = pytest.importorskip("filterpy.kalman", reason="FilterPy is a test dependency: pip install -e .[test]")


def _random_model(rng, n, m, steps):
    """A random stable linear-Gaussian chain with irregular time steps: F = expm(A dt), Q ∝ dt."""
    from scipy.linalg import expm

    generator = rng.normal(size=(n, n)) * 0.3
    generator -= (np.linalg.eigvals(generator).real.max() + 0.2) * np.eye(n)  # stable: states stay O(1)
    dts = rng.uniform(0.1, 2.0, size=steps)
    transitions = np.array([expm(generator * dt) for dt in dts])
    root = rng.normal(size=(n, n)) * 0.2
    process = np.array([root @ root.T * dt + 1e-3 * np.eye(n) * dt for dt in dts])
    observation = rng.normal(size=(m, n))
    noise_root = rng.normal(size=(m, m)) * 0.3
    observation_noise = noise_root @ noise_root.T + 0.05 * np.eye(m)
    return transitions, process, observation, observation_noise


def _simulate(rng, transitions, process, observation, observation_noise, prior_mean, prior_cov):
    x = rng.multivariate_normal(prior_mean, prior_cov)
    ys = []
    for f, q in zip(transitions, process, strict=True):
        x = f @ x + rng.multivariate_normal(np.zeros(len(x)), q)
        ys.append(observation @ x + rng.multivariate_normal(np.zeros(observation.shape[0]), observation_noise))
    return np.array(ys)


@pytest.mark.parametrize(("n", "m"), [(1, 1), (2, 1), (4, 2), (6, 3)])
def test_filter_and_smoother_equal_filterpy(n, m):
    rng = np.random.default_rng(100 + 10 * n + m)
    steps = 60
    transitions, process, observation, observation_noise = _random_model(rng, n, m, steps)
    prior_mean, prior_cov = rng.normal(size=n), np.eye(n) * 2.0
    ys = _simulate(rng, transitions, process, observation, observation_noise, prior_mean, prior_cov)
    # Missing measurements: whole steps (FilterPy's z=None) for the comparison.
    missing = rng.random(steps) < 0.25
    ys_ours = ys.copy()
    ys_ours[missing] = np.nan

    kf = filterpy_kalman.KalmanFilter(dim_x=n, dim_z=m)
    kf.x, kf.P, kf.H, kf.R = prior_mean.copy(), prior_cov.copy(), observation, observation_noise
    zs = [None if gap else y for gap, y in zip(missing, ys, strict=True)]
    means, covs, _, _ = kf.batch_filter(zs, Fs=list(transitions), Qs=list(process))
    smooth_means, smooth_covs, _, _ = kf.rts_smoother(means, covs, Fs=list(transitions), Qs=list(process))

    ours = forward_filter(prior_mean, prior_cov, transitions, process, observation, observation_noise, ys_ours[None])
    np.testing.assert_allclose(ours.mean[0], means, rtol=0, atol=1e-9)
    np.testing.assert_allclose(ours.cov[0], covs, rtol=0, atol=1e-9)
    smoothed = rts_smoother(ours, transitions)
    np.testing.assert_allclose(smoothed.mean[0], smooth_means, rtol=0, atol=1e-9)
    np.testing.assert_allclose(smoothed.cov[0], smooth_covs, rtol=0, atol=1e-9)


def test_partially_missing_rows_equal_a_filter_on_the_observed_rows_only():
    """A NaN in one row of y drops that factor alone: same as FilterPy given H, R restricted to the rest."""
    rng = np.random.default_rng(7)
    n, m, steps = 3, 3, 40
    transitions, process, observation, observation_noise = _random_model(rng, n, m, steps)
    observation_noise = np.diag(np.diag(observation_noise))  # independent sensors
    prior_mean, prior_cov = np.zeros(n), np.eye(n)
    ys = _simulate(rng, transitions, process, observation, observation_noise, prior_mean, prior_cov)
    present = rng.random((steps, m)) > 0.3
    ys_ours = np.where(present, ys, np.nan)

    kf = filterpy_kalman.KalmanFilter(dim_x=n, dim_z=m)
    kf.x, kf.P = prior_mean.copy(), prior_cov.copy()
    means = []
    for k in range(steps):
        kf.predict(F=transitions[k], Q=process[k])
        rows = np.flatnonzero(present[k])
        if rows.size:
            kf.update(ys[k, rows], R=observation_noise[np.ix_(rows, rows)], H=observation[rows])
        means.append(kf.x.copy())
    ours = forward_filter(prior_mean, prior_cov, transitions, process, observation, observation_noise, ys_ours[None])
    np.testing.assert_allclose(ours.mean[0], np.array(means), rtol=0, atol=1e-9)


def test_batch_rows_are_independent_units():
    rng = np.random.default_rng(3)
    n, m, steps = 2, 1, 30
    transitions, process, observation, observation_noise = _random_model(rng, n, m, steps)
    ys = np.stack([_simulate(rng, transitions, process, observation, observation_noise, np.zeros(n), np.eye(n))
                   for _ in range(5)])  # fmt: skip
    together = forward_filter(np.zeros(n), np.eye(n), transitions, process, observation, observation_noise, ys)
    for unit in range(5):
        alone = forward_filter(np.zeros(n), np.eye(n), transitions, process, observation, observation_noise,
                               ys[unit : unit + 1])  # fmt: skip
        np.testing.assert_array_equal(together.mean[unit], alone.mean[0])
        assert together.log_likelihood[unit] == alone.log_likelihood[0]


def test_log_likelihood_equals_the_joint_gaussian_density():
    """Σ_k log N(y_k; H m⁻_k, S_k) is the exact log density of all y under the linear-Gaussian model."""
    from scipy.stats import multivariate_normal

    rng = np.random.default_rng(11)
    n, m, steps = 2, 1, 8
    transitions, process, observation, observation_noise = _random_model(rng, n, m, steps)
    prior_mean, prior_cov = np.array([0.5, -0.2]), np.eye(n) * 0.7
    ys = _simulate(rng, transitions, process, observation, observation_noise, prior_mean, prior_cov)
    # Joint moments of (y_0 … y_{T−1}) by propagating the state's mean and covariance blocks.
    means, blocks = [], []
    mean, cov = prior_mean, prior_cov
    propagators = []
    for f, q in zip(transitions, process, strict=True):
        mean, cov = f @ mean, f @ cov @ f.T + q
        means.append(mean)
        blocks.append(cov)
        propagators.append(f)
    joint = np.zeros((steps * m, steps * m))
    for i in range(steps):
        for j in range(i, steps):
            carried = np.eye(n)
            for k in range(i + 1, j + 1):
                carried = propagators[k] @ carried
            block = observation @ carried @ blocks[i] @ observation.T
            joint[j * m : (j + 1) * m, i * m : (i + 1) * m] = block
            joint[i * m : (i + 1) * m, j * m : (j + 1) * m] = block.T
        joint[i * m : (i + 1) * m, i * m : (i + 1) * m] += observation_noise
    expected = multivariate_normal(np.concatenate([observation @ mu for mu in means]), joint).logpdf(ys.ravel())
    ours = forward_filter(prior_mean, prior_cov, transitions, process, observation, observation_noise, ys[None])
    assert ours.log_likelihood[0] == pytest.approx(expected, rel=1e-10)


def test_shapes_are_checked_with_clear_messages():
    with pytest.raises(ValueError, match="measurements"):
        forward_filter(np.zeros(2), np.eye(2), np.eye(2), np.eye(2), np.ones((1, 2)), np.eye(1), np.zeros((5, 1)))
    with pytest.raises(ValueError, match="observation must be"):
        forward_filter(np.zeros(2), np.eye(2), np.eye(2), np.eye(2), np.ones((1, 3)), np.eye(1), np.zeros((1, 5, 1)))


def test_scalar_update_equals_the_general_joseph_update():
    rng = np.random.default_rng(5)
    for n in (1, 3, 4, 6):
        root = rng.normal(size=(n, n))
        cov = root @ root.T + n * np.eye(n)
        mean, row = rng.normal(size=n), rng.normal(size=n)
        y, r = rng.normal(), 0.3
        general_mean, general_cov = np.empty(n), np.empty((n, n))
        general = update(mean, cov, row[None], np.array([[r]]), np.array([y]), general_mean, general_cov)
        scalar_mean, scalar_cov = np.empty(n), np.empty((n, n))
        scalar = update_scalar(mean, cov, row, r, y, scalar_mean, scalar_cov, np.empty(n))
        np.testing.assert_allclose(scalar_mean, general_mean, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(scalar_cov, general_cov, rtol=1e-9, atol=1e-12)
        assert scalar == pytest.approx(general, rel=1e-10)
