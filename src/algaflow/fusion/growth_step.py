"""One sample of the growth chain: its process factor, its robust OD factor, the dry-weight factor, and the
chain's start (the prior from the first valid sample and the clock); compiled, for the batch filter
(fusion.growth) and the live one (fusion.online).

State per unit (fusion.growth_model): z = (X, μ, b, d) with X the biomass (g/L), μ the net specific growth
rate (1/h), b the OD baseline offset (blank error, fouling; OD units) and d its drift rate (OD/h): a probe
drifts steadily (biofilm on the optics), so the baseline is an integrated random walk, not a free one.

Why X and not ln X: the OD factor is then linear in the state (exactly so for a linear calibration), so the
direction the readings cannot see (biomass up, baseline down by a times as much) is a straight line, and the
filter's mean hardly creeps along it. With ln X that line is a curve; each linearisation at a different
point gained spurious information along it, and a dilute culture's baseline drifted 3 sd off in three days
(in X what is left is the product X μ of the process, about half an sd over three days of a flat culture).

Where the growth factor over a step is uncertain (Δt sd μ > :data:`LOG_STEP_ABOVE_GROWTH_SPREAD`: daily
manual samples, an outage), a Gaussian in X would put mass on negative biomass, so that step is taken in
ln X, where the process is linear and exact (fusion.growth_log_step), and the smoother goes back over it
there too.

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
fusion.od_factor.od_measurement_factor). It is made robust as a Student-t factor with ν degrees of freedom
(one reweighting of R by w = (ν + 1)/(ν + r²), r the standardised innovation), and gated: r beyond
``gate_sigma`` drops the factor. A run of ``jump_confirmations`` rejections that agree with each other is
a real level shift (an unannounced harvest): X restarts from that sample, μ and b are kept.
Every sample gets a flag saying what was done with it (fusion.growth_model.FLAG_NAMES).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from algaflow.fusion.gaussian import FAST_FINITE_SAFE
from algaflow.fusion.growth_log_step import (
    from_log_coordinates,
    iterate_here,
    iterated_od_update,
    linear_process_rows,
    log_process_factor,
    log_space_noise,
    to_log_coordinates,
)
from algaflow.fusion.growth_model import (
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
    REJECTED,
    SIGMA_ABS,
    SIGMA_REL,
    TIME_NOT_INCREASING,
    USED,
)
from algaflow.fusion.od_factor import (
    biomass_from_signal,
    log_od_measurement_factor,
    od_innovation_variance,
    od_measurement_factor,
    od_update,
)


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
