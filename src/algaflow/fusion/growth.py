"""Biomass and specific growth rate from optical density: a robust extended Kalman filter on a factor chain.

State per unit: z = (X, μ, b, d) with X the biomass (g/L), μ the net specific growth rate (1/h), b the OD
baseline offset (blank error, fouling; OD units) and d its drift rate (OD/h): a probe drifts steadily
(biofilm on the optics), so the baseline is an integrated random walk, not a free one.

Why X and not ln X: the OD factor is then linear in the state (exactly so for a linear calibration), so the
direction the readings cannot see (biomass up, baseline down by a times as much) is a straight line, and the
filter's mean hardly creeps along it. With ln X that line is a curve; each linearisation at a different
point gained spurious information along it, and a dilute culture's baseline drifted 3 sd off in three days
(in X what is left is the product X μ of the process, about half an sd over three days of a flat culture).

Where the growth factor over a step is uncertain (Δt sd μ > :data:`LOG_STEP_ABOVE_GROWTH_SPREAD`: daily
manual samples, an outage), a Gaussian in X would put mass on negative biomass, so that step is taken in
ln X, where the process is linear and exact (fusion.growth_log_step), and the smoother goes back over it
there too. Samples before the first valid one carry the chain's starting belief; the chain starts with one
step from the first sample's time, so a live chain (fusion.online) is this filter exactly.

Process factor over Δt (h): exponential growth, dℓ = μ dt + σ_ℓ dW, dμ = σ_μ dW for ℓ = ln X, with a known
harvest or dilution of fraction f between two samples (a known input, never smeared into μ) and, where the
reactor model informs μ, its expected change u_k (μ_k += u_k, ℓ by the step's trapezoid u_k Δt/2):

    X_k = (1 − f_k) X_{k−1} e^{μ_{k−1} Δt + u_k Δt/2},  μ_k = μ_{k−1} + u_k,  b_k = b_{k−1} + d_{k−1} Δt,  d_k = d_{k−1}

linearised at the previous mean (F its Jacobian: ∂X_k/∂X = X_k/X_{k−1}, ∂X_k/∂μ = X_k Δt), with the
exactly discretised log-space noise carried to X by that Jacobian, J = diag(X_k, 1):

    Q = J blocks (ℓ, μ): σ_μ² [[Δt³/3, Δt²/2], [Δt²/2, Δt]] + diag(σ_ℓ² Δt, 0)  Jᵀ
               (b, d):   σ_d² [[Δt³/3, Δt²/2], [Δt²/2, Δt]] + diag(σ_b² Δt, 0)

Measurement factor (the calibration curve OD = c0 + a X + c X², c0 the baseline's prior mean, with noise
sd √(σ_abs² + (σ_rel OD)²)):

    OD_k = a X_k + c X_k² + b_k + v,   H = [a + 2c E X, 0, 1, 0]

linear for c = 0; otherwise statistically linearised under the prediction (exact Gaussian moments:
:func:`od_measurement_factor`). It is made robust as a Student-t factor with ν degrees of freedom (one
reweighting of R by w = (ν + 1)/(ν + r²), r the standardised innovation), and gated: r beyond
``gate_sigma`` drops the factor. A run of ``jump_confirmations`` rejections that agree with each other is
a real level shift (an unannounced harvest): X restarts from that sample, μ and b are kept.
Every sample gets a flag saying what was done with it (:data:`FLAG_NAMES`).

The batch filter takes the usual step (a valid reading, a step short enough for X, the gate passed) on
scalars (:func:`linear_step`): Numba takes and drops a reference, atomically, for every array handed to a
compiled call, and the array path's calls cost more in those than in arithmetic. Every other step, and the
live filter (fusion.online), go through :func:`growth_step`; the two give the same numbers (tests).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
from numba import njit, prange

from algaflow.fusion.gaussian import FAST_FINITE_SAFE, SmootherResult, rts_step
from algaflow.fusion.growth_log_step import (
    change_to_log,
    from_log_coordinates,
    iterate_here,
    iterated_od_update,
    linear_process_rows,
    log_process_factor,
    log_space_noise,
    lowest_log_biomass_point,
    to_log_coordinates,
)
from algaflow.fusion.growth_model import (  # noqa: F401  (the chain's names, re-exported)
    A_SLOPE,
    BASE0_SD,
    BASELINE,
    BIOMASS,
    C_INTERCEPT,
    C_QUADRATIC,
    DOF,
    DOWNWEIGHTED,
    DRIFT,
    DRIFT0_SD,
    FLAG_NAMES,
    GATE,
    GROWTH_RATE,
    INVALID,
    JUMP_CONFIRMATIONS,
    LEVEL_JUMP,
    MISSING,
    MU0_SD,
    N_GROWTH_STATE,
    OD_MAX,
    OD_MIN,
    Q_BASE,
    Q_DRIFT,
    Q_LOG,
    Q_MU,
    REJECTED,
    SIGMA_ABS,
    SIGMA_REL,
    STATE_NAMES,
    TIME_NOT_INCREASING,
    USED,
    GrowthModel,
)
from algaflow.fusion.od_factor import (
    biomass_from_signal,
    log_od_measurement_factor,
    od_innovation_variance,
    od_measurement_factor,
    od_update,
)
from algaflow.fusion.timeline import place_on_samples


@njit(cache=True, error_model="numpy", fastmath=FAST_FINITE_SAFE)
def process_factor(dt: float, survival: float, rate_input: float, model: np.ndarray, mean: np.ndarray,
                   transition: np.ndarray, noise: np.ndarray, out_mean: np.ndarray) -> None:
    """The process factor from ``mean`` over dt hours with the known survival 1 − f and rate input u
    (module doc): the predicted mean, F (the Jacobian at ``mean``) and Q."""
    growth = survival * math.exp(mean[GROWTH_RATE] * dt + 0.5 * rate_input * dt)
    biomass = mean[BIOMASS] * growth
    linear_process_rows(dt, rate_input, mean, transition, out_mean)
    out_mean[BIOMASS] = biomass
    transition[BIOMASS, BIOMASS] = growth
    transition[BIOMASS, GROWTH_RATE] = biomass * dt
    log_space_noise(dt, model, noise)
    for i in range(N_GROWTH_STATE):  # J Q_ℓ Jᵀ, J = diag(X_k, 1, 1, 1)
        noise[BIOMASS, i] *= biomass
        noise[i, BIOMASS] *= biomass


@njit(cache=True, error_model="numpy", fastmath=FAST_FINITE_SAFE)
def predict_growth(cov, transition, noise, out_cov) -> None:
    """P⁻ = F P Fᵀ + Q for the process factor's F, written out: F's only off-identity entries are
    F_XX, F_Xμ and F_bd, so F P changes rows X and b, and (F P) Fᵀ columns X and b."""
    n = N_GROWTH_STATE
    f_xx, f_xm, f_bd = transition[BIOMASS, BIOMASS], transition[BIOMASS, GROWTH_RATE], transition[BASELINE, DRIFT]
    for j in range(n):  # rows: F P
        out_cov[BIOMASS, j] = f_xx * cov[BIOMASS, j] + f_xm * cov[GROWTH_RATE, j]
        out_cov[GROWTH_RATE, j] = cov[GROWTH_RATE, j]
        out_cov[BASELINE, j] = cov[BASELINE, j] + f_bd * cov[DRIFT, j]
        out_cov[DRIFT, j] = cov[DRIFT, j]
    for i in range(n):  # columns: (F P) Fᵀ, then + Q
        out_cov[i, BIOMASS] = f_xx * out_cov[i, BIOMASS] + f_xm * out_cov[i, GROWTH_RATE]
        out_cov[i, BASELINE] += f_bd * out_cov[i, DRIFT]
        for j in range(n):
            out_cov[i, j] += noise[i, j]


@njit(cache=True, error_model="numpy")
def starts_chain(time: float, value: float, model: np.ndarray) -> bool:
    """Whether a sample can start a unit's chain: a finite, plausible OD at a finite time."""
    return math.isfinite(value) and model[OD_MIN] <= value <= model[OD_MAX] and math.isfinite(time)


@njit(cache=True, error_model="numpy")
def pre_start_flag(time: float, value: float) -> int:
    """The flag of a sample before the chain has started (one that cannot start it, :func:`starts_chain`)."""
    if not math.isfinite(time):
        return TIME_NOT_INCREASING
    return MISSING if math.isnan(value) else INVALID


@njit(cache=True, error_model="numpy")
def first_valid_index(times: np.ndarray, od: np.ndarray, model: np.ndarray) -> int:
    """The first sample that starts the chain (:func:`starts_chain`), −1 if none."""
    for k in range(od.shape[0]):
        if starts_chain(times[k], od[k], model):
            return k
    return -1


@njit(cache=True, error_model="numpy")
def first_finite_time(times: np.ndarray) -> float:
    """The chain's clock starts at the first finite sample time (NaN if none)."""
    for k in range(times.shape[0]):
        if math.isfinite(times[k]):
            return times[k]
    return math.nan


@njit(cache=True, error_model="numpy")
def initial_belief(first_od: float, model: np.ndarray, mean: np.ndarray, cov: np.ndarray) -> None:
    """Prior factor from the first sample: X₀ from OD₀ − c0 through the calibration curve (at least two noise
    sd), with the sample's and the blank's uncertainty carried by the curve's slope s = a + 2c X₀,
    var X₀ = ((2 σ_OD)² + σ_b0²) / s²; μ ~ N(0, σ_μ0²), b ~ N(c0, σ_b0²), d ~ N(0, σ_d0²)."""
    reading = first_od - model[C_INTERCEPT] if math.isfinite(first_od) else 0.1
    level = max(reading, 2.0 * model[SIGMA_ABS])
    mean[:] = 0.0
    mean[BIOMASS] = biomass_from_signal(level, model)
    mean[BASELINE] = model[C_INTERCEPT]
    slope = model[A_SLOPE] + 2.0 * model[C_QUADRATIC] * mean[BIOMASS]
    reading_variance = model[SIGMA_ABS] ** 2 + (model[SIGMA_REL] * level) ** 2
    cov[:, :] = 0.0
    cov[BIOMASS, BIOMASS] = (4.0 * reading_variance + model[BASE0_SD] ** 2) / slope**2
    cov[GROWTH_RATE, GROWTH_RATE] = model[MU0_SD] ** 2
    cov[BASELINE, BASELINE] = model[BASE0_SD] ** 2
    cov[DRIFT, DRIFT] = model[DRIFT0_SD] ** 2


@njit(cache=True, error_model="numpy")
def _consistent(innovations: np.ndarray) -> bool:
    """Rejected innovations that agree (same sign, spread under a quarter of their mean) are a level shift."""
    low, high = innovations.min(), innovations.max()
    if low * high <= 0.0:
        return False
    return (high - low) < 0.25 * abs(innovations.mean())


# The chain's clock per unit, carried from step to step (:func:`growth_step`).
LAST_TIME, PENDING_SURVIVAL, REJECTED_RUN_LENGTH, LAST_STEP_IN_LOG = range(4)
N_CLOCK = 4


@njit(cache=True, error_model="numpy")
def start_clock(first_time: float, clock: np.ndarray) -> None:
    """The clock before the first sample: last time the first sample's (0 if not finite), nothing pending."""
    clock[LAST_TIME] = first_time if math.isfinite(first_time) else 0.0
    clock[PENDING_SURVIVAL] = 1.0
    clock[REJECTED_RUN_LENGTH] = 0.0
    clock[LAST_STEP_IN_LOG] = 0.0


# A step whose growth factor e^{μΔt} is uncertain by more than this (Δt sd μ) is taken in log coordinates
# (fusion.growth_log_step): a sample a day, an outage, the first samples of a sparse record.
LOG_STEP_ABOVE_GROWTH_SPREAD = 0.05


@njit(cache=True, error_model="numpy", fastmath=FAST_FINITE_SAFE, inline="always")
def growth_step(time, value, dilution, rate_input, model, previous_mean, previous_cov, clock, rejected_run, mean,
                cov, prior_mean, prior_cov, transition, scratch) -> int:  # fmt: skip
    """One sample of the chain: the process factor from the previous belief to ``time`` (with the known
    dilution and rate input), then the robust OD factor (module doc). Writes the step's prior, transition
    and posterior, in biomass coordinates; returns the sample's flag. ``clock`` (N_CLOCK) and
    ``rejected_run`` (the standardised innovations of the current run of rejections) carry the chain
    between calls; ``scratch`` is a :func:`step_scratch`.

    A step with Δt sd μ > LOG_STEP_ABOVE_GROWTH_SPREAD is taken in log coordinates (fusion.growth_log_step):
    the previous belief is carried to ℓ = ln X, predicted and measured there, and the prior, posterior and
    transition carried back (F_X = J_k⁻¹ F_ℓ J_{k−1}, so the smoother sees one chain in X)."""
    noise, log_mean, log_cov = scratch[0], scratch[4], scratch[5]
    dt = time - clock[LAST_TIME]
    if not (dt >= 0.0) or not math.isfinite(time):
        # Backwards, duplicate-in-the-past or missing time: carry the belief, ignore the sample.
        dt = 0.0
        flag = TIME_NOT_INCREASING
    else:
        flag = -1
        clock[LAST_TIME] = time
    clock[PENDING_SURVIVAL] *= 1.0 - dilution  # dilutions announced on samples with a bad time wait for a good one
    removed = 0.0
    if flag != TIME_NOT_INCREASING:
        removed = 1.0 - clock[PENDING_SURVIVAL]
        clock[PENDING_SURVIVAL] = 1.0
    in_log = dt * math.sqrt(max(previous_cov[GROWTH_RATE, GROWTH_RATE], 0.0)) > LOG_STEP_ABOVE_GROWTH_SPREAD
    clock[LAST_STEP_IN_LOG] = 1.0 if in_log else 0.0
    if in_log:
        previous_biomass = to_log_coordinates(previous_mean, previous_cov, model, log_mean, log_cov)
        log_process_factor(dt, 1.0 - removed, rate_input, model, log_mean, transition, noise, prior_mean)
        predict_growth(log_cov, transition, noise, prior_cov)
    else:
        previous_biomass = 1.0
        process_factor(dt, 1.0 - removed, rate_input, model, previous_mean, transition, noise, prior_mean)
        predict_growth(previous_cov, transition, noise, prior_cov)
    if flag != TIME_NOT_INCREASING:
        if math.isnan(value):
            flag = MISSING
        elif not math.isfinite(value) or value < model[OD_MIN] or value > model[OD_MAX]:
            flag = INVALID
    if flag == -1:
        flag = _measure(value, dt, in_log, model, prior_mean, prior_cov, clock, rejected_run, mean, cov, scratch)
    else:  # no factor at this step: the belief is the prediction
        mean[:] = prior_mean
        cov[:, :] = prior_cov
    if in_log:
        predicted_biomass = from_log_coordinates(prior_mean, prior_cov)
        from_log_coordinates(mean, cov)
        for i in range(N_GROWTH_STATE):  # F_X = diag(X⁻, 1, 1, 1) F_ℓ diag(1/X_{k−1}, 1, 1, 1)
            transition[BIOMASS, i] *= predicted_biomass
            transition[i, BIOMASS] /= previous_biomass
    return flag


@njit(cache=True, error_model="numpy", fastmath=FAST_FINITE_SAFE, inline="always")
def _measure(value, dt, in_log, model, prior_mean, prior_cov, clock, rejected_run, mean, cov, scratch) -> int:
    """The robust OD factor on the step's prior (in log coordinates if ``in_log``): gate, level jump,
    Student-t weight, update. Returns the flag."""
    n = N_GROWTH_STATE
    observation, measurement_noise, measurement = scratch[1], scratch[2], scratch[3]
    point, flat = scratch[6], scratch[7]
    if in_log:
        predicted_od = log_od_measurement_factor(prior_mean, prior_cov, value, model, observation, measurement_noise,
                                                 measurement)  # fmt: skip
    else:
        predicted_od = od_measurement_factor(prior_mean, prior_cov, value, model, observation, measurement_noise,
                                             measurement)  # fmt: skip
    slope = observation[0, BIOMASS]
    innovation_variance = od_innovation_variance(prior_cov, slope, measurement_noise[0, 0])
    innovation = value - predicted_od
    standardised = innovation / math.sqrt(innovation_variance)
    confirmations = int(model[JUMP_CONFIRMATIONS])
    if abs(standardised) > model[GATE]:
        run_length = int(clock[REJECTED_RUN_LENGTH])
        rejected_run[run_length % rejected_run.shape[0]] = standardised
        run_length += 1
        clock[REJECTED_RUN_LENGTH] = run_length
        if run_length < confirmations or not _consistent(rejected_run):
            mean[:] = prior_mean
            cov[:, :] = prior_cov
            return REJECTED
        # The level moved for real (an unannounced harvest or dilution): restart X from this sample through
        # the calibration curve, with twice the sample's own sd, keep μ and b, and take the sample.
        level = max(value - prior_mean[BASELINE], 10.0 * model[SIGMA_ABS])
        restart = biomass_from_signal(level, model)
        curve_slope = model[A_SLOPE] + 2.0 * model[C_QUADRATIC] * restart
        restart_variance = 4.0 * (model[SIGMA_ABS] ** 2 + (model[SIGMA_REL] * level) ** 2) / curve_slope**2
        for i in range(n):
            prior_cov[BIOMASS, i] = 0.0
            prior_cov[i, BIOMASS] = 0.0
        if in_log:
            prior_mean[BIOMASS] = math.log(restart)
            prior_cov[BIOMASS, BIOMASS] = restart_variance / restart**2
            predicted_od = log_od_measurement_factor(prior_mean, prior_cov, value, model, observation,
                                                     measurement_noise, measurement)  # fmt: skip
        else:
            prior_mean[BIOMASS] = restart
            prior_cov[BIOMASS, BIOMASS] = restart_variance
            predicted_od = od_measurement_factor(prior_mean, prior_cov, value, model, observation, measurement_noise,
                                                 measurement)  # fmt: skip
        slope = observation[0, BIOMASS]
        od_update(prior_mean, prior_cov, slope, value - predicted_od,
                  od_innovation_variance(prior_cov, slope, measurement_noise[0, 0]), mean, cov)
        clock[REJECTED_RUN_LENGTH] = 0.0
        return LEVEL_JUMP
    clock[REJECTED_RUN_LENGTH] = 0.0
    # Student-t factor: R → R / w, w = (ν + 1)/(ν + r²) ≤ 1, so s grows by R (1/w − 1).
    weight = min((model[DOF] + 1.0) / (model[DOF] + standardised * standardised), 1.0)
    if in_log and iterate_here(dt, prior_mean, prior_cov, value, model):
        iterated_od_update(prior_mean, prior_cov, value, weight, model, mean, cov, observation, measurement_noise,
                           measurement, point, flat)  # fmt: skip
    else:
        innovation_variance += measurement_noise[0, 0] * (1.0 / weight - 1.0)
        od_update(prior_mean, prior_cov, slope, innovation, innovation_variance, mean, cov)
    return DOWNWEIGHTED if weight < 0.5 else USED


# Entry (i, j) of a symmetric 4 × 4 covariance in :func:`linear_step`'s order XX Xμ Xb Xd μμ μb μd bb bd dd.
SYMMETRIC_ENTRY = ((0, 1, 2, 3), (1, 4, 5, 6), (2, 5, 7, 8), (3, 6, 8, 9))


@njit(cache=True, error_model="numpy", fastmath=FAST_FINITE_SAFE)
def linear_step(x, mu, b, d, p_xx, p_xm, p_xb, p_xd, p_mm, p_mb, p_md, p_bb, p_bd, p_dd, dt, survival, rate_input,
                value, a, c, sigma_abs, sigma_rel, q, q_log, q_base, q_drift, dof, gate):  # fmt: skip
    """The usual step on scalars: the process factor in X and a linear(ised) OD factor that passes the gate
    (:func:`growth_step` with ``in_log`` false, a valid reading and |r| ≤ gate), written out entry by entry
    for F = I but F_XX = g, F_Xμ = X⁻Δt, F_bd = Δt (A = F P, then P⁻ = A Fᵀ + Q) and the update with
    H = [h, 0, 1, 0] (v = P⁻Hᵀ, m = m⁻ + v ν/s, P = P⁻ − v vᵀ/s). Numba takes and drops a reference for
    every array a compiled call is handed, atomically; this path hands none (the model's entries come one by
    one: slope a, curvature c, noise σ_abs and σ_rel, the diffusions, Student-t ν and the gate).

    Returns (standardised innovation r, then only if |r| ≤ gate: the Student-t weight w, g, the prior
    (4 means, 10 covariances XX Xμ Xb Xd μμ μb μd bb bd dd) and the posterior in the same order); where
    |r| > gate the rest are NaN and the caller takes :func:`growth_step`'s path (gate, level jump)."""
    growth = survival * math.exp(mu * dt + 0.5 * rate_input * dt)
    x_prior = x * growth
    f_xm = x_prior * dt
    mu_prior, b_prior, d_prior = mu + rate_input, b + dt * d, d
    # Q (log-space noise carried to X by J = diag(X⁻, 1, 1, 1)).
    q_xx = (q * dt**3 / 3.0 + q_log * dt) * x_prior * x_prior
    q_xm = q * dt**2 / 2.0 * x_prior
    q_mm = q * dt
    q_bb = q_drift * dt**3 / 3.0 + q_base * dt
    q_bd = q_drift * dt**2 / 2.0
    q_dd = q_drift * dt
    # A = F P: rows X and b change.
    a_xx, a_xm = growth * p_xx + f_xm * p_xm, growth * p_xm + f_xm * p_mm
    a_xb, a_xd = growth * p_xb + f_xm * p_mb, growth * p_xd + f_xm * p_md
    a_bb, a_bd = p_bb + dt * p_bd, p_bd + dt * p_dd
    # P⁻ = A Fᵀ + Q: columns X and b change.
    c_xx = growth * a_xx + f_xm * a_xm + q_xx
    c_xm = a_xm + q_xm
    c_xb = a_xb + dt * a_xd
    c_xd = a_xd
    c_mm = p_mm + q_mm
    c_mb = p_mb + dt * p_md
    c_md = p_md
    c_bb = a_bb + dt * a_bd + q_bb
    c_bd = a_bd + q_bd
    c_dd = p_dd + q_dd
    # The OD factor (od_measurement_factor): exact Gaussian moments of a X + c X² + b.
    variance = max(c_xx, 0.0)
    predicted = a * x_prior + c * (x_prior * x_prior + variance) + b_prior
    slope = a + 2.0 * c * x_prior
    level = max(abs(predicted), abs(value))
    noise = sigma_abs**2 + (sigma_rel * level) ** 2 + 2.0 * c * c * variance * variance
    innovation_variance = noise + slope * slope * c_xx + 2.0 * slope * c_xb + c_bb
    innovation = value - predicted
    standardised = innovation / math.sqrt(innovation_variance)
    nan = math.nan
    if abs(standardised) > gate:
        return (standardised, nan, nan, nan, nan, nan, nan, nan, nan, nan, nan, nan, nan, nan, nan, nan, nan, nan,
                nan, nan, nan, nan, nan, nan, nan, nan, nan, nan, nan, nan, nan)  # fmt: skip
    weight = min((dof + 1.0) / (dof + standardised * standardised), 1.0)
    innovation_variance += noise * (1.0 / weight - 1.0)
    v_x = slope * c_xx + c_xb
    v_m = slope * c_xm + c_mb
    v_b = slope * c_xb + c_bb
    v_d = slope * c_xd + c_bd
    scaled = innovation / innovation_variance
    inverse = 1.0 / innovation_variance
    w_x, w_m, w_b, w_d = v_x * inverse, v_m * inverse, v_b * inverse, v_d * inverse
    return (standardised, weight, growth,
            x_prior, mu_prior, b_prior, d_prior, c_xx, c_xm, c_xb, c_xd, c_mm, c_mb, c_md, c_bb, c_bd, c_dd,
            x_prior + v_x * scaled, mu_prior + v_m * scaled, b_prior + v_b * scaled, d_prior + v_d * scaled,
            c_xx - v_x * w_x, c_xm - v_x * w_m, c_xb - v_x * w_b, c_xd - v_x * w_d, c_mm - v_m * w_m,
            c_mb - v_m * w_b, c_md - v_m * w_d, c_bb - v_b * w_b, c_bd - v_b * w_d, c_dd - v_d * w_d)  # fmt: skip


@njit(cache=True, error_model="numpy")
def step_scratch():
    """Work arrays of :func:`growth_step`: Q, H, R, y, a belief in log coordinates, a Gauss–Newton point and
    a zero matrix."""
    n = N_GROWTH_STATE
    return (np.empty((n, n)), np.empty((1, n)), np.empty((1, 1)), np.empty(1), np.empty(n), np.empty((n, n)),
            np.empty(n), np.zeros((n, n)))


@njit(cache=True, error_model="numpy")
def dry_weight_update(mean: np.ndarray, cov: np.ndarray, value: float, variance: float) -> None:
    """A manual dry-weight sample as a factor, in place: DW = X + v, v ~ N(0, σ_DW²), H = e_X (linear in
    the chain's biomass), m += P_{:,X} (DW − m_X)/s, P −= P_{:,X} P_{X,:}/s, s = P_XX + σ_DW²."""
    n = N_GROWTH_STATE
    innovation_variance = cov[BIOMASS, BIOMASS] + variance
    if not innovation_variance > 0.0:
        return
    innovation = value - mean[BIOMASS]
    column = np.empty(n)
    for i in range(n):
        column[i] = cov[i, BIOMASS]
    for i in range(n):
        mean[i] += column[i] * innovation / innovation_variance
        for j in range(n):
            cov[i, j] -= column[i] * column[j] / innovation_variance


@njit(cache=True, error_model="numpy", fastmath=FAST_FINITE_SAFE)
def _filter_unit(times, od, dilution, rate_input, dry_weight, dry_weight_variance, model, mean, cov, predicted_mean,
                 predicted_cov, transitions, log_steps, flags):  # fmt: skip
    """The chain starts at the first sample that can start it, with :func:`initial_belief` of its reading,
    from the clock of the first finite time: one step over the samples before it, whose dilutions are
    pending (so a live chain, fusion.online, which sees them one by one, is this exactly). Before, each
    sample carries the chain's starting belief, with the identity as transition."""
    steps = times.shape[0]
    n = N_GROWTH_STATE
    scratch = step_scratch()
    prior_mean = np.zeros(n)
    prior_cov = np.zeros((n, n))
    first = first_valid_index(times, od, model)
    initial_belief(od[first] if first >= 0 else math.nan, model, prior_mean, prior_cov)
    clock = np.empty(N_CLOCK)
    start_clock(first_finite_time(times), clock)
    rejected_run = np.zeros(max(int(model[JUMP_CONFIRMATIONS]), 1))
    keep = predicted_mean.shape[0] == steps  # store every step's prior (smoothing needs them), or only the last
    for k in range(steps):
        stored = k if keep else 0
        if first < 0 or k < first:
            flags[k] = pre_start_flag(times[k], od[k])
            clock[PENDING_SURVIVAL] *= 1.0 - dilution[k]
            mean[k] = prior_mean
            cov[k] = prior_cov
            predicted_mean[stored] = prior_mean
            predicted_cov[stored] = prior_cov
            transitions[stored] = np.eye(n)
            log_steps[stored] = False
            continue
        # The usual step on scalars (linear_step), where growth_step would take that path: a valid reading at a
        # later time, a step short enough for X, the gate passed. Outputs are read and written entry by entry:
        # no array is handed to a call, so no reference is taken (an atomic operation) per step.
        time, value = times[k], od[k]
        dt = time - clock[LAST_TIME]
        if (k > first and dt >= 0.0 and math.isfinite(time) and math.isfinite(value)
                and model[OD_MIN] <= value <= model[OD_MAX]
                and dt * math.sqrt(max(cov[k - 1, GROWTH_RATE, GROWTH_RATE], 0.0)) <= LOG_STEP_ABOVE_GROWTH_SPREAD):
            removed = 1.0 - clock[PENDING_SURVIVAL] * (1.0 - dilution[k])
            step = linear_step(mean[k - 1, 0], mean[k - 1, 1], mean[k - 1, 2], mean[k - 1, 3], cov[k - 1, 0, 0],
                               cov[k - 1, 0, 1], cov[k - 1, 0, 2], cov[k - 1, 0, 3], cov[k - 1, 1, 1], cov[k - 1, 1, 2],
                               cov[k - 1, 1, 3], cov[k - 1, 2, 2], cov[k - 1, 2, 3], cov[k - 1, 3, 3], dt,
                               1.0 - removed, rate_input[k], value, model[A_SLOPE], model[C_QUADRATIC],
                               model[SIGMA_ABS], model[SIGMA_REL], model[Q_MU], model[Q_LOG], model[Q_BASE],
                               model[Q_DRIFT], model[DOF], model[GATE])  # fmt: skip
            weight = step[1]
            if weight == weight:  # not gated (a gated reading goes through growth_step: rejection, level jump)
                clock[LAST_TIME] = time
                clock[PENDING_SURVIVAL] = 1.0
                clock[REJECTED_RUN_LENGTH] = 0.0
                clock[LAST_STEP_IN_LOG] = 0.0
                prior, posterior = step[3:17], step[17:31]
                for i in range(n):
                    predicted_mean[stored, i] = prior[i]
                    mean[k, i] = posterior[i]
                    for j in range(n):
                        entry = SYMMETRIC_ENTRY[i][j]
                        predicted_cov[stored, i, j] = prior[4 + entry]
                        cov[k, i, j] = posterior[4 + entry]
                        transitions[stored, i, j] = 1.0 if i == j else 0.0
                transitions[stored, BIOMASS, BIOMASS] = step[2]
                transitions[stored, BIOMASS, GROWTH_RATE] = prior[BIOMASS] * dt
                transitions[stored, BASELINE, DRIFT] = dt
                flags[k] = DOWNWEIGHTED if weight < 0.5 else USED
                log_steps[stored] = False
                if math.isfinite(dry_weight[k]):
                    dry_weight_update(mean[k], cov[k], dry_weight[k], dry_weight_variance)
                continue
        previous_mean = prior_mean if k == first else mean[k - 1]
        previous_cov = prior_cov if k == first else cov[k - 1]
        flags[k] = growth_step(times[k], od[k], dilution[k], rate_input[k], model, previous_mean, previous_cov,
                               clock, rejected_run, mean[k], cov[k], predicted_mean[stored], predicted_cov[stored],
                               transitions[stored], scratch)  # fmt: skip
        log_steps[stored] = clock[LAST_STEP_IN_LOG] != 0.0
        if math.isfinite(dry_weight[k]):
            dry_weight_update(mean[k], cov[k], dry_weight[k], dry_weight_variance)


@njit(cache=True, error_model="numpy", parallel=True)
def _filter_batch(times, od, dilution, rate_input, dry_weight, dry_weight_variance, model, mean, cov, predicted_mean,
                  predicted_cov, transitions, log_steps, flags):  # fmt: skip
    for u in prange(times.shape[0]):
        _filter_unit(times[u], od[u], dilution[u], rate_input[u], dry_weight[u], dry_weight_variance, model, mean[u],
                     cov[u], predicted_mean[u], predicted_cov[u], transitions[u], log_steps[u], flags[u])


@dataclass(slots=True)
class GrowthEstimates:
    """Per unit and sample: state means and covariances, sample flags, and the chain's transitions.

    predicted_* hold each step's prior (after any known dilution); at a level jump, the restarted one.
    log_steps marks the steps taken in log coordinates (:data:`LOG_STEP_ABOVE_GROWTH_SPREAD`); the smoother
    goes back over them in the same coordinates. ``model`` is the chain's GrowthModel as an array.
    """

    times_h: np.ndarray
    mean: np.ndarray  # (units, steps, N_GROWTH_STATE)
    cov: np.ndarray  # (units, steps, N_GROWTH_STATE, N_GROWTH_STATE)
    flags: np.ndarray  # (units, steps) codes of FLAG_NAMES
    predicted_mean: np.ndarray
    predicted_cov: np.ndarray
    transitions: np.ndarray
    log_steps: np.ndarray  # (units, steps kept) bool
    model: np.ndarray

    @property
    def growth_rate_per_h(self) -> np.ndarray:
        return self.mean[..., GROWTH_RATE]

    @property
    def growth_rate_sd(self) -> np.ndarray:
        return np.sqrt(self.cov[..., GROWTH_RATE, GROWTH_RATE])

    @property
    def biomass_g_per_l(self) -> np.ndarray:
        return self.mean[..., BIOMASS]

    @property
    def biomass_sd(self) -> np.ndarray:
        return np.sqrt(self.cov[..., BIOMASS, BIOMASS])


def dilution_before_samples(sample_times_h: np.ndarray, harvest_times_h: np.ndarray,
                            harvest_fractions: np.ndarray) -> np.ndarray:
    """Fraction removed just before each sample: a harvest at t_h acts on the first sample at or after t_h
    (fusion.timeline.place_on_samples; one after the last sample on none), several on one sample combine as
    1 − Π(1 − f)."""
    sample_times_h = np.asarray(sample_times_h, dtype=float)
    harvest_times_h = np.asarray(harvest_times_h, dtype=float)
    harvest_fractions = np.asarray(harvest_fractions, dtype=float)
    if harvest_times_h.shape != harvest_fractions.shape:
        raise ValueError(f"{harvest_times_h.size} harvest times and {harvest_fractions.size} fractions")
    survival = np.ones(sample_times_h.size)
    index, placed = place_on_samples(harvest_times_h, sample_times_h)
    np.multiply.at(survival, index[placed], 1.0 - harvest_fractions[placed])  # in order, repeats compound
    return 1.0 - survival


def filter_growth(times_h: np.ndarray, od: np.ndarray, dilution_fraction: np.ndarray | None = None,
                  model: GrowthModel | None = None, keep_priors: bool = True, rate_input: np.ndarray | None = None,
                  dry_weight: np.ndarray | None = None, dry_weight_sd: float = 0.02) -> GrowthEstimates:  # fmt: skip
    """Causal estimates for a batch: times_h, od (units, steps) with NaN gaps; dilution_fraction (units, steps)
    is the known fraction removed (and replaced by medium) just before each sample, 0 where none.

    ``rate_input`` (units, steps): the model's expected change of μ just before each sample
    (fusion.expected_rate; the first entry is the model's μ, the prior mean): μ⁻ += u_k, X⁻ ×= e^{u_k Δt / 2}
    (the step's trapezoid on ln X), and μ's random walk is then the model's error, with the smaller diffusion
    ``informed_growth_rate_diffusion``.

    ``dry_weight`` (units, steps): a manual dry-weight sample (g/L, sd ``dry_weight_sd``) taken with each
    sample, NaN where none: a factor on X after the OD factor (:func:`dry_weight_update`); it pins the biomass
    the OD baseline and drift otherwise share with it.

    ``keep_priors=False`` stores only the last step's prior and transition (a live filter that will not be
    smoothed: 60 % less memory traffic); :func:`smooth_growth` needs them all."""
    model = model or GrowthModel()
    times_h = np.ascontiguousarray(np.atleast_2d(times_h), dtype=float)
    od = np.ascontiguousarray(np.atleast_2d(od), dtype=float)
    if times_h.shape != od.shape:
        raise ValueError(f"times_h {times_h.shape} and od {od.shape} must have the same (units, steps) shape")
    if dilution_fraction is None:
        dilution_fraction = np.zeros_like(od)
    dilution_fraction = np.ascontiguousarray(np.atleast_2d(dilution_fraction), dtype=float)
    if dilution_fraction.shape != od.shape:
        raise ValueError(f"dilution_fraction {dilution_fraction.shape} must match od {od.shape}")
    if np.any((dilution_fraction < 0) | (dilution_fraction >= 1)):
        raise ValueError("dilution_fraction must lie in [0, 1): the fraction of culture removed")
    units, steps = od.shape
    n = N_GROWTH_STATE
    mean = np.empty((units, steps, n))
    cov = np.empty((units, steps, n, n))
    kept = steps if keep_priors else 1
    predicted_mean = np.empty((units, kept, n))
    predicted_cov = np.empty((units, kept, n, n))
    transitions = np.empty((units, kept, n, n))
    log_steps = np.zeros((units, kept), dtype=np.bool_)
    flags = np.empty((units, steps), dtype=np.int64)
    if rate_input is None:
        rate_input = np.zeros_like(od)
    else:
        model = replace(model, growth_rate_diffusion=model.informed_growth_rate_diffusion)
    rate_input = np.ascontiguousarray(np.atleast_2d(rate_input), dtype=float)
    if rate_input.shape != od.shape or not np.isfinite(rate_input).all():
        raise ValueError(f"rate_input {rate_input.shape} must be finite and match od {od.shape}")
    dry_weight = np.full_like(od, np.nan) if dry_weight is None else np.atleast_2d(np.asarray(dry_weight, float))
    if dry_weight.shape != od.shape:
        raise ValueError(f"dry_weight {dry_weight.shape} must match od {od.shape}")
    if not dry_weight_sd > 0:
        raise ValueError(f"dry_weight_sd must be > 0 g/L (got {dry_weight_sd})")
    parameters = model.as_array()
    _filter_batch(times_h, od, dilution_fraction, rate_input, np.ascontiguousarray(dry_weight), dry_weight_sd**2,
                  parameters, mean, cov, predicted_mean, predicted_cov, transitions, log_steps, flags)  # fmt: skip
    return GrowthEstimates(times_h, mean, cov, flags, predicted_mean, predicted_cov, transitions, log_steps,
                           parameters)  # fmt: skip


def smooth_growth(estimates: GrowthEstimates) -> SmootherResult:
    """Offline estimates: the RTS backward pass over the filter's chain (its stored priors and transitions,
    so known harvests scale the smoothed X exactly as they scaled the filtered one): the extended RTS
    smoother, each step back in the coordinates its forward step was taken in (:func:`_smooth_unit`)."""
    if estimates.predicted_mean.shape[1] != estimates.mean.shape[1]:
        raise ValueError("these estimates were filtered with keep_priors=False; smoothing needs every prior")
    smooth_mean = np.empty_like(estimates.mean)
    smooth_cov = np.empty_like(estimates.cov)
    gain = np.empty_like(estimates.cov)
    _smooth_batch(estimates.mean, estimates.cov, estimates.predicted_mean, estimates.predicted_cov,
                  estimates.transitions, estimates.log_steps, estimates.model, smooth_mean, smooth_cov, gain)
    return SmootherResult(smooth_mean, smooth_cov, gain)


@njit(cache=True, error_model="numpy")
def _smooth_unit(mean, cov, predicted_mean, predicted_cov, transitions, log_steps, model, smooth_mean, smooth_cov,
                 gain) -> None:  # fmt: skip
    """RTS from the last step back (fusion.gaussian.rts_step). Before a step k+1 taken in log coordinates the
    step back is taken there too: the filtered belief at k and the prior at k+1 carried to ℓ at the points
    the forward step used (so F_ℓ = diag(1/X⁻, 1, 1, 1) F_X diag(X_k, 1, 1, 1) is the forward's), the smoothed
    belief at k+1 at its own mean; the result carried back at its own mean, and G_X = diag(X^s_k) G_ℓ
    diag(1/X^s_{k+1})."""
    steps, n = mean.shape
    scratch_a, scratch_b = np.empty((n, n)), np.empty((n, n))
    filtered_mean, filtered_cov = np.empty(n), np.empty((n, n))
    prior_mean, prior_cov = np.empty(n), np.empty((n, n))
    next_mean, next_cov = np.empty(n), np.empty((n, n))
    transition = np.empty((n, n))
    floor = lowest_log_biomass_point(model)
    smooth_mean[steps - 1] = mean[steps - 1]
    smooth_cov[steps - 1] = cov[steps - 1]
    gain[steps - 1] = 0.0
    for k in range(steps - 2, -1, -1):
        if not log_steps[k + 1]:
            rts_step(mean[k], cov[k], predicted_mean[k + 1], predicted_cov[k + 1], transitions[k + 1],
                     smooth_mean[k + 1], smooth_cov[k + 1], smooth_mean[k], smooth_cov[k], gain[k], scratch_a,
                     scratch_b)  # fmt: skip
            continue
        previous = to_log_coordinates(mean[k], cov[k], model, filtered_mean, filtered_cov)
        predicted = predicted_mean[k + 1, BIOMASS]
        change_to_log(predicted_mean[k + 1], predicted_cov[k + 1], predicted, prior_mean, prior_cov)
        following = max(smooth_mean[k + 1, BIOMASS], floor)
        change_to_log(smooth_mean[k + 1], smooth_cov[k + 1], following, next_mean, next_cov)
        transition[:, :] = transitions[k + 1]
        for i in range(n):
            transition[BIOMASS, i] /= predicted
            transition[i, BIOMASS] *= previous
        rts_step(filtered_mean, filtered_cov, prior_mean, prior_cov, transition, next_mean, next_cov, smooth_mean[k],
                 smooth_cov[k], gain[k], scratch_a, scratch_b)  # fmt: skip
        smoothed = from_log_coordinates(smooth_mean[k], smooth_cov[k])
        for i in range(n):
            gain[k, BIOMASS, i] *= smoothed
            gain[k, i, BIOMASS] /= following


@njit(cache=True, error_model="numpy", parallel=True)
def _smooth_batch(mean, cov, predicted_mean, predicted_cov, transitions, log_steps, model, smooth_mean, smooth_cov,
                  gain) -> None:  # fmt: skip
    for u in prange(mean.shape[0]):
        _smooth_unit(mean[u], cov[u], predicted_mean[u], predicted_cov[u], transitions[u], log_steps[u], model,
                     smooth_mean[u], smooth_cov[u], gain[u])
