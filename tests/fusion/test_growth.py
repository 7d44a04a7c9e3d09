import numpy as np
import pytest

from algaflow.fusion.growth import filter_growth
from algaflow.fusion.growth_linear_step import SYMMETRIC_ENTRY, linear_step
from algaflow.fusion.growth_model import (
    A_SLOPE,
    C_QUADRATIC,
    DOF,
    FLAG_NAMES,
    GATE,
    GROWTH_RATE,
    INVALID,
    LEVEL_JUMP,
    MISSING,
    N_GROWTH_STATE,
    Q_BASE,
    Q_DRIFT,
    Q_LOG,
    Q_MU,
    REJECTED,
    SIGMA_ABS,
    SIGMA_REL,
    TIME_NOT_INCREASING,
    GrowthModel,
)
from algaflow.fusion.growth_step import (
    N_CLOCK,
    dry_weight_update,
    growth_step,
    process_factor,
    start_clock,
    step_scratch,
)
from tests.fusion.test_growth_log_step import log_space_discretisation
from tests.references import central_difference_jacobian


def _culture(rng, hours=48.0, every_min=1.0, harvest_at=25.0, fraction=0.7, spike_rate=0.0, noise=1.0):
    """Exponential phases (μ 0.08 → 0.03 → −0.01 1/h), one harvest of known fraction, OD = X + noise."""
    t = np.arange(0.0, hours, every_min / 60.0)
    mu = np.where(t < 20, 0.08, np.where(t < 30, 0.03, -0.01))
    log_x = np.log(0.1) + np.concatenate([[0.0], np.cumsum(mu[:-1] * np.diff(t))])
    dilution = np.zeros_like(t)
    k = int(np.searchsorted(t, harvest_at))
    dilution[k] = fraction
    log_x[k:] += np.log1p(-fraction)
    x = np.exp(log_x)
    od = x + noise * (rng.normal(0, 0.005, t.size) + 0.01 * x * rng.normal(size=t.size))
    spikes = rng.random(t.size) < spike_rate
    od[spikes] += rng.uniform(0.1, 0.5, spikes.sum())
    return t, mu, od, dilution, spikes


def test_process_noise_is_the_exact_log_space_discretisation_carried_to_biomass():
    """The factor's Q is J Q_ℓ Jᵀ with J = diag(X_k, 1, 1, 1) and Q_ℓ the Van Loan (1978) discretisation of the
    log-space walks (tests/fusion/test_growth_log_step.py), and its F the Jacobian of the mean map."""
    model = GrowthModel()
    dt, survival, rate_input = 0.37, 0.3, 0.004
    n = N_GROWTH_STATE
    noise_log_space = log_space_discretisation(model, dt)[1]
    parameters = model.as_array()
    mean = np.array([0.4, 0.05, 0.01, 2e-4])

    def step(state):
        transition, noise, predicted = np.empty((n, n)), np.empty((n, n)), np.empty(n)
        process_factor(dt, survival, rate_input, parameters, state, transition, noise, predicted)
        return transition, noise, predicted

    transition, noise, predicted = step(mean)
    biomass = 0.4 * survival * np.exp(0.05 * dt + 0.5 * rate_input * dt)
    np.testing.assert_allclose(predicted, [biomass, 0.05 + rate_input, 0.01 + 2e-4 * dt, 2e-4], rtol=1e-12)
    jacobian = np.diag([biomass, 1.0, 1.0, 1.0])
    np.testing.assert_allclose(noise, jacobian @ noise_log_space @ jacobian.T, rtol=1e-9, atol=1e-18)
    central = central_difference_jacobian(lambda state: step(state)[2], mean, 1e-6, 1e-3)
    np.testing.assert_allclose(transition, central, rtol=1e-7, atol=1e-10)


def test_growth_rate_tracks_the_truth_with_honest_bands():
    rng = np.random.default_rng(0)
    t, mu, od, dilution, _ = _culture(rng)
    estimates = filter_growth(t[None], od[None], dilution[None])
    error = estimates.growth_rate_per_h[0] - mu
    sd = estimates.growth_rate_sd[0]
    settled = t > 2.0
    assert np.sqrt(np.mean(error[settled] ** 2)) < 0.015
    coverage = np.mean(np.abs(error[settled]) <= 1.96 * sd[settled])
    assert 0.85 <= coverage <= 0.995


def test_a_known_harvest_moves_biomass_in_one_step_and_leaves_the_growth_rate_alone():
    rng = np.random.default_rng(1)
    t, mu, od, dilution, _ = _culture(rng, harvest_at=25.0, noise=0.1)
    estimates = filter_growth(t[None], od[None], dilution[None])
    after = (t >= 25.0 + 0.25) & (t < 26.0)  # from 15 minutes after the harvest on
    assert np.max(np.abs(estimates.growth_rate_per_h[0, after] - mu[after])) < 0.005
    # The same harvest, not announced: after a few consistent rejections it is taken as a level jump.
    unannounced = filter_growth(t[None], od[None])
    jumps = np.flatnonzero(unannounced.flags[0] == LEVEL_JUMP)
    assert jumps.size == 1 and 0 < t[jumps[0]] - 25.0 < 0.1
    later = t > 27.0
    true_biomass = 0.1 * np.exp(np.concatenate([[0.0], np.cumsum(mu[:-1] * np.diff(t))]))
    true_biomass[t >= 25.0] *= 0.3
    for result in (estimates, unannounced):  # the truth stays inside the ±1.96 sd band of X, either way
        standardised = (result.biomass_g_per_l[0, later] - true_biomass[later]) / result.biomass_sd[0, later]
        assert np.all(np.abs(standardised) < 1.96), np.abs(standardised).max()
    k = int(np.searchsorted(t, 25.0))
    ratio = estimates.biomass_g_per_l[0, k + 1] / estimates.biomass_g_per_l[0, k - 1]
    assert ratio == pytest.approx(0.3, rel=0.05)


def test_bubble_spikes_are_flagged_and_do_not_drag_the_estimate():
    rng = np.random.default_rng(2)
    t, _, od, dilution, spikes = _culture(rng, spike_rate=0.02)
    clean = filter_growth(t[None], np.where(spikes, np.nan, od)[None], dilution[None])
    spiky = filter_growth(t[None], od[None], dilution[None])
    flagged = np.isin(spiky.flags[0], [REJECTED]) | (spiky.flags[0] == 2)
    assert flagged[spikes].mean() > 0.95
    assert np.max(np.abs(spiky.growth_rate_per_h[0] - clean.growth_rate_per_h[0])[t > 2]) < 0.01


def test_bad_samples_are_flagged_with_a_reason_and_never_corrupt_the_state():
    rng = np.random.default_rng(3)
    t, mu, od, dilution, _ = _culture(rng, hours=10.0, harvest_at=5.0)
    od[100] = np.nan
    od[200] = -3.0  # negative OD: outside the plausible range
    od[300] = np.inf
    t = t.copy()
    t[400] = t[399] - 0.5  # backwards timestamp
    t[500] = t[499]  # duplicate timestamp: dt = 0 is allowed, the sample is a second reading
    estimates = filter_growth(t[None], od[None], dilution[None])
    flags = estimates.flags[0]
    assert flags[100] == MISSING and flags[200] == INVALID and flags[300] == INVALID
    assert flags[400] == TIME_NOT_INCREASING
    assert np.isfinite(estimates.mean).all() and np.isfinite(estimates.cov).all()
    assert abs(estimates.mean[0, -1, GROWTH_RATE] - mu[-1]) < 3 * estimates.growth_rate_sd[0, -1]
    assert set(FLAG_NAMES) >= {"missing", "invalid_value", "time_not_increasing"}


def test_a_harvest_announced_on_a_sample_with_a_bad_time_is_applied_at_the_next_good_one():
    rng = np.random.default_rng(4)
    t, _, od, dilution, _ = _culture(rng, hours=30.0, harvest_at=25.0, noise=0.1)
    k = int(np.flatnonzero(dilution)[0])
    t = t.copy()
    t[k] = t[k - 1] - 1.0  # the harvest sample's clock jumped back
    reference = filter_growth(np.delete(t, k)[None], np.delete(od, k)[None],
                              np.delete(np.roll(dilution, 1), k)[None])  # fmt: skip
    shifted = filter_growth(t[None], od[None], dilution[None])
    np.testing.assert_allclose(np.delete(shifted.mean[0], k, axis=0), reference.mean[0], rtol=1e-12, atol=1e-12)


def test_a_rate_change_the_model_announces_is_followed_at_once_and_a_biased_model_is_corrected():
    """μ steps 0.08 → 0.03 → −0.01 1/h at 20 h and 30 h. The input announces each change (u_k = Δμ_model) but
    the model's level is 0.02 1/h too high throughout: δ must learn −0.02, and after each step the informed
    estimate is right within the hour, where OD alone lags for hours."""
    rng = np.random.default_rng(5)
    t, mu, od, dilution, _ = _culture(rng)
    model_rate = mu + 0.02
    rate_input = np.diff(model_rate, prepend=0.0)
    informed = filter_growth(t[None], od[None], dilution[None], rate_input=rate_input[None])
    plain = filter_growth(t[None], od[None], dilution[None])
    after_steps = ((t > 20.5) & (t < 23.0)) | ((t > 30.5) & (t < 33.0))
    informed_error = np.abs(informed.growth_rate_per_h[0] - mu)
    plain_error = np.abs(plain.growth_rate_per_h[0] - mu)
    assert np.sqrt(np.mean(informed_error[after_steps] ** 2)) < 0.3 * np.sqrt(np.mean(plain_error[after_steps] ** 2))
    settled = t > 10.0
    assert np.max(informed_error[settled]) < 0.006
    sd = informed.growth_rate_sd[0, settled]
    # covered; no upper bound on coverage here: δ's random walk is wider than this constant δ needs
    assert np.mean(informed_error[settled] <= 1.96 * sd) > 0.9 and np.max(sd) < 0.008
    with pytest.raises(ValueError, match="rate_input"):
        filter_growth(t[None], od[None], rate_input=np.full((1, 3), 0.1))


def test_model_and_input_checks_name_the_problem():
    with pytest.raises(ValueError, match="od_noise_sd"):
        GrowthModel(od_noise_sd=0.0)
    with pytest.raises(ValueError, match="dilution_fraction"):
        filter_growth(np.arange(3.0)[None], np.ones((1, 3)), np.array([[0, 1.0, 0]]))
    with pytest.raises(ValueError, match="same"):
        filter_growth(np.arange(3.0)[None], np.ones((1, 4)))


def test_daily_samples_of_an_exponential_culture_give_its_rate():
    """One sample a day: the process factor is linearised over a whole day, with μ still uncertain; the
    rate is still found within the noise, and the band covers it."""
    days = np.arange(12.0)
    rate = 0.4 / 24.0  # 1/h
    od = 0.2 * np.exp(rate * 24.0 * days) * (1 + 0.01 * np.random.default_rng(3).standard_normal(days.size))
    estimates = filter_growth(days * 24.0, od)
    np.testing.assert_allclose(estimates.growth_rate_per_h[0, 1:], rate, atol=0.003)  # 1 % noise, a day apart
    inside = np.abs(estimates.growth_rate_per_h[0, 2:] - rate) < 1.96 * estimates.growth_rate_sd[0, 2:]
    assert inside.all()


def test_dry_weights_pin_the_biomass_that_a_drifting_probe_shares_with_its_baseline():
    """An OD probe that drifts 0.015 AU a day (3 noise sd, the suites' largest) from an offset of +0.01 AU: on
    OD alone the chain can only widen its band for what drift and growth share; a dry weight every 12 h (sd
    0.02 g/L) is a factor on X that pins it: the error and the band both shrink, and the band still covers."""
    rng = np.random.default_rng(9)
    t = np.arange(0.0, 72.0, 1 / 60)
    biomass = 0.2 * np.exp(0.02 * t)
    od = biomass + 0.01 + 0.015 * t / 24 + rng.normal(0, 0.005, t.size)
    dry_weight = np.full(t.size, np.nan)
    every_12_h = np.searchsorted(t, np.arange(6.0, 72.0, 12.0))
    dry_weight[every_12_h] = biomass[every_12_h] + rng.normal(0, 0.02, every_12_h.size)
    alone = filter_growth(t[None], od[None])
    pinned = filter_growth(t[None], od[None], dry_weight=dry_weight[None], dry_weight_sd=0.02)
    late = t > 24.0
    error_alone = np.abs(alone.biomass_g_per_l[0] - biomass)[late]
    error_pinned = np.abs(pinned.biomass_g_per_l[0] - biomass)[late]
    assert np.mean(error_pinned <= 1.96 * pinned.biomass_sd[0, late]) > 0.9
    assert np.sqrt(np.mean(error_pinned**2)) < 0.6 * np.sqrt(np.mean(error_alone**2))
    assert np.median(pinned.biomass_sd[0, late]) < 0.7 * np.median(alone.biomass_sd[0, late])
    # the factor itself is the Kalman update with H = e_X
    k = every_12_h[2]
    prior_mean, prior_cov = alone.mean[0, k], alone.cov[0, k]
    mean, cov = prior_mean.copy(), prior_cov.copy()
    dry_weight_update(mean, cov, 0.5, 0.02**2)
    gain = prior_cov[:, 0] / (prior_cov[0, 0] + 0.02**2)
    np.testing.assert_allclose(mean, prior_mean + gain * (0.5 - prior_mean[0]), rtol=1e-12)
    np.testing.assert_allclose(cov, prior_cov - np.outer(gain, prior_cov[0]), rtol=1e-9, atol=1e-15)
    with pytest.raises(ValueError, match="dry_weight"):
        filter_growth(t[None], od[None], dry_weight=dry_weight[None, :10])


@pytest.mark.parametrize("seed", range(6))
def test_the_scalar_step_is_the_array_step(seed):
    """linear_step (the batch filter's usual step, on scalars) against growth_step's array path from the same
    belief: quadratic calibration curve, a dilution, a model rate input, Student-t reweighting; and a reading
    beyond the gate returns NaN (the caller then takes growth_step's rejection path)."""
    rng = np.random.default_rng(seed)
    model = GrowthModel(od_quadratic=0.08, od_intercept=0.01).as_array()
    root = rng.normal(0.0, 0.05, (N_GROWTH_STATE, N_GROWTH_STATE))
    cov = root @ root.T * np.array([1.0, 0.01, 0.01, 1e-4])[:, None] * np.array([1.0, 0.01, 0.01, 1e-4])[None, :]
    cov += np.diag([1e-4, 1e-5, 1e-5, 1e-8])
    mean = np.array([rng.uniform(0.1, 2.0), rng.uniform(-0.02, 0.08), rng.normal(0.0, 0.01), rng.normal(0.0, 1e-4)])
    dt, dilution, rate_input = 1 / 60, (0.3 if seed % 2 else 0.0), rng.normal(0.0, 1e-3)
    survival = 1.0 - dilution
    expected_od = model[A_SLOPE] * mean[0] * survival + model[C_QUADRATIC] * (mean[0] * survival) ** 2 + mean[2]
    value = expected_od + rng.normal(0.0, 0.02)  # up to ~4 sd: some samples are down-weighted
    clock = np.empty(N_CLOCK)
    start_clock(0.0, clock)
    out_mean, out_cov = np.empty(N_GROWTH_STATE), np.empty((N_GROWTH_STATE, N_GROWTH_STATE))
    prior_mean, prior_cov = np.empty(N_GROWTH_STATE), np.empty((N_GROWTH_STATE, N_GROWTH_STATE))
    transition = np.empty((N_GROWTH_STATE, N_GROWTH_STATE))
    growth_step(dt, value, dilution, rate_input, model, mean, cov, clock, np.zeros(5), out_mean, out_cov, prior_mean,
                prior_cov, transition, step_scratch())  # fmt: skip
    upper = [(i, j) for i in range(N_GROWTH_STATE) for j in range(i, N_GROWTH_STATE)]
    scalars = [*mean, *(cov[i, j] for i, j in upper)]
    parameters = [model[k] for k in (A_SLOPE, C_QUADRATIC, SIGMA_ABS, SIGMA_REL, Q_MU, Q_LOG, Q_BASE, Q_DRIFT, DOF,
                                     GATE)]  # fmt: skip
    step = linear_step(*scalars, dt, survival, rate_input, value, *parameters)
    symmetric = np.array(SYMMETRIC_ENTRY)
    np.testing.assert_allclose(step[3:7], prior_mean, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(np.array(step[7:17])[symmetric], prior_cov, rtol=1e-10, atol=1e-16)
    np.testing.assert_allclose(step[17:21], out_mean, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(np.array(step[21:31])[symmetric], out_cov, rtol=1e-10, atol=1e-16)
    assert step[2] == pytest.approx(transition[0, 0], rel=1e-14)
    gated = linear_step(*scalars, dt, survival, rate_input, expected_od + 50.0, *parameters)
    assert abs(gated[0]) > model[GATE] and np.isnan(gated[1:]).all()
