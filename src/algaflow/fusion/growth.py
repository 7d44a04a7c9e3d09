"""Biomass and specific growth rate from optical density: a robust extended Kalman filter on a factor chain.

State per unit: z = (ℓ, μ, b, d) with ℓ = ln X (X biomass in g/L), μ the net specific growth rate (1/h),
b the OD baseline offset (blank error, fouling; OD units) and d its drift rate (OD/h): a probe drifts
steadily (biofilm on the optics), so the baseline is an integrated random walk, not a free one.

Process factor over Δt (h), exact for dℓ = μ dt, dμ = σ_μ dW, db = σ_b dW, plus a small σ_ℓ for what
the exponential law misses; a harvest or dilution of known fraction f between two samples moves ℓ by
ln(1 − f) in one step (a known input, not noise, so it is never smeared into μ):

    ℓ_k = ℓ_{k−1} + μ_{k−1} Δt + ln(1 − f_k),   μ_k = μ_{k−1},   b_k = b_{k−1} + d_{k−1} Δt,   d_k = d_{k−1}
    Q = blocks (ℓ, μ): σ_μ² [[Δt³/3, Δt²/2], [Δt²/2, Δt]] + diag(σ_ℓ² Δt, 0)
               (b, d): σ_d² [[Δt³/3, Δt²/2], [Δt²/2, Δt]] + diag(σ_b² Δt, 0)

(where the reactor model informs μ, its expected change u_k is a known input too: μ_k += u_k, ℓ_k += u_k Δt/2;
see :func:`filter_growth` and fusion.expected_rate)

Measurement factor (the calibration curve OD = c0 + a X + c X², c0 the baseline's prior mean, with noise
sd √(σ_abs² + (σ_rel OD)²)):

    OD_k = a e^{ℓ_k} + c e^{2ℓ_k} + b_k + v,   statistically linearised under the prediction
    (exact log-normal moments: :func:`od_measurement_factor`), H = [a E e^ℓ + 2c E e^{2ℓ}, 0, 1, 0]

made robust as a Student-t factor with ν degrees of freedom (one reweighting of R by
w = (ν + 1)/(ν + r²), r the standardised innovation), and gated: r beyond ``gate_sigma`` drops the
factor. A run of ``jump_confirmations`` rejections that agree with each other is a real level shift (an
unannounced harvest): ℓ restarts from that sample, μ and b are kept.
Every sample gets a flag saying what was done with it (:data:`FLAG_NAMES`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
from numba import njit, prange

from algaflow.fusion.gaussian import FAST_FINITE_SAFE, SmootherResult, backward_pass

STATE_NAMES = ("log_biomass", "growth_rate_per_h", "od_baseline", "od_drift_per_h")
LOG_BIOMASS, GROWTH_RATE, BASELINE, DRIFT = range(4)
N_GROWTH_STATE = 4

FLAG_NAMES = ("used", "missing", "downweighted", "rejected_outlier", "invalid_value", "time_not_increasing",
              "level_jump")
USED, MISSING, DOWNWEIGHTED, REJECTED, INVALID, TIME_NOT_INCREASING, LEVEL_JUMP = range(7)


@dataclass(frozen=True, slots=True)
class GrowthModel:
    """Noise and calibration of the growth chain; one configuration for every culture (see module doc)."""

    od_per_g_per_l: float = 1.0  # calibration slope a
    od_quadratic: float = 0.0  # calibration curvature c (OD per (g/L)²): OD = c0 + a X + c X² + b
    od_intercept: float = 0.0  # calibration intercept c0: the baseline's prior mean
    od_noise_sd: float = 0.005  # σ_abs, OD
    od_relative_noise: float = 0.01  # σ_rel
    growth_rate_diffusion: float = 6e-5  # σ_μ², (1/h)² per h
    informed_growth_rate_diffusion: float = 1e-6  # σ_μ² of the model's error δ when the model informs μ
    log_biomass_diffusion: float = 2e-5  # σ_ℓ², per h
    baseline_diffusion: float = 1e-6  # σ_b², OD² per h
    drift_diffusion: float = 1e-10  # σ_d², (OD/h)² per h
    initial_growth_rate_sd: float = 0.1  # 1/h
    initial_baseline_sd: float = 0.01  # OD: a blanked photometer's offset, two catalog noise sd
    initial_drift_sd: float = 4e-4  # OD/h (0.01 OD per day)
    student_t_dof: float = 4.0
    gate_sigma: float = 8.0
    od_plausible_min: float = -0.05
    od_plausible_max: float = 10.0
    jump_confirmations: int = 5  # consecutive consistent rejections that mean the level really moved

    def __post_init__(self) -> None:
        for name in ("od_per_g_per_l", "od_noise_sd", "growth_rate_diffusion", "initial_growth_rate_sd",
                     "student_t_dof", "gate_sigma"):  # fmt: skip
            if not getattr(self, name) > 0:
                raise ValueError(f"GrowthModel.{name} must be > 0 (got {getattr(self, name)})")
        for name in ("od_relative_noise", "log_biomass_diffusion", "baseline_diffusion", "initial_baseline_sd",
                     "drift_diffusion", "initial_drift_sd"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"GrowthModel.{name} must be ≥ 0 (got {getattr(self, name)})")

    def as_array(self) -> np.ndarray:
        return np.array([self.od_per_g_per_l, self.od_noise_sd, self.od_relative_noise, self.growth_rate_diffusion,
                         self.log_biomass_diffusion, self.baseline_diffusion, self.initial_growth_rate_sd,
                         self.initial_baseline_sd, self.student_t_dof, self.gate_sigma, self.od_plausible_min,
                         self.od_plausible_max, self.jump_confirmations, self.drift_diffusion,
                         self.initial_drift_sd, self.od_quadratic, self.od_intercept])  # fmt: skip


(A_SLOPE, SIGMA_ABS, SIGMA_REL, Q_MU, Q_LOG, Q_BASE, MU0_SD, BASE0_SD, DOF, GATE, OD_MIN, OD_MAX,
 JUMP_CONFIRMATIONS, Q_DRIFT, DRIFT0_SD, C_QUADRATIC, C_INTERCEPT) = range(17)


@njit(cache=True, error_model="numpy", fastmath=FAST_FINITE_SAFE)
def process_factor(dt: float, dilution_fraction: float, model: np.ndarray, transition: np.ndarray,
                   noise: np.ndarray) -> float:
    """Fill F and Q for a step of dt hours; return the known shift ln(1 − f) of ℓ."""
    transition[:, :] = 0.0
    for i in range(N_GROWTH_STATE):
        transition[i, i] = 1.0
    transition[LOG_BIOMASS, GROWTH_RATE] = dt
    transition[BASELINE, DRIFT] = dt
    q = model[Q_MU]
    noise[:, :] = 0.0
    noise[LOG_BIOMASS, LOG_BIOMASS] = q * dt**3 / 3.0 + model[Q_LOG] * dt
    noise[LOG_BIOMASS, GROWTH_RATE] = q * dt**2 / 2.0
    noise[GROWTH_RATE, LOG_BIOMASS] = q * dt**2 / 2.0
    noise[GROWTH_RATE, GROWTH_RATE] = q * dt
    q = model[Q_DRIFT]
    noise[BASELINE, BASELINE] = q * dt**3 / 3.0 + model[Q_BASE] * dt
    noise[BASELINE, DRIFT] = q * dt**2 / 2.0
    noise[DRIFT, BASELINE] = q * dt**2 / 2.0
    noise[DRIFT, DRIFT] = q * dt
    return math.log1p(-dilution_fraction) if dilution_fraction > 0.0 else 0.0


@njit(cache=True, error_model="numpy", fastmath=FAST_FINITE_SAFE)
def predict_growth(mean, cov, dt, noise, out_mean, out_cov) -> None:
    """The process factor's prediction m⁻ = F m, P⁻ = F P Fᵀ + Q with F = I + Δt (e_ℓ e_μᵀ + e_b e_dᵀ),
    written out: F only adds Δt × (row μ) to row ℓ and Δt × (row d) to row b, then the same on columns."""
    n = N_GROWTH_STATE
    for i in range(n):
        out_mean[i] = mean[i]
    out_mean[LOG_BIOMASS] += dt * mean[GROWTH_RATE]
    out_mean[BASELINE] += dt * mean[DRIFT]
    for j in range(n):  # rows: F P
        out_cov[LOG_BIOMASS, j] = cov[LOG_BIOMASS, j] + dt * cov[GROWTH_RATE, j]
        out_cov[GROWTH_RATE, j] = cov[GROWTH_RATE, j]
        out_cov[BASELINE, j] = cov[BASELINE, j] + dt * cov[DRIFT, j]
        out_cov[DRIFT, j] = cov[DRIFT, j]
    for i in range(n):  # columns: (F P) Fᵀ, then + Q
        out_cov[i, LOG_BIOMASS] += dt * out_cov[i, GROWTH_RATE]
        out_cov[i, BASELINE] += dt * out_cov[i, DRIFT]
        for j in range(n):
            out_cov[i, j] += noise[i, j]


@njit(cache=True, error_model="numpy")
def od_measurement_factor(mean: np.ndarray, cov: np.ndarray, od: float, model: np.ndarray,
                          observation: np.ndarray, noise: np.ndarray, measurement: np.ndarray) -> float:
    """Statistically linearise OD = a e^ℓ + c e^{2ℓ} + b (the calibration curve a X + c X², intercept in b)
    under the prior N(mean, cov): fills H (1×4), R (1×1) and the equivalent linear measurement; returns the
    predicted OD E[h(z)].

    The moments are exact for a Gaussian prior (X = e^ℓ log-normal), the limit of the sigma-point rule:

        E[X^j] = e^{j m_ℓ + j² P_ℓℓ/2},   Cov(z, g(ℓ)) = P_{:,ℓ} E[g'(ℓ)]   (Stein's lemma), g = a X + c X²
        H = [a E[X] + 2c E[X²], 0, 1, 0],  Ω = Var g − H_ℓ² P_ℓℓ,
        Var g = a² (E[X²] − E[X]²) + c² (E[X⁴] − E[X²]²) + 2ac (E[X³] − E[X] E[X²])

    R = σ_abs² + (σ_rel OD)² + Ω: the linearisation error Ω is noise, so a culture whose biomass is still
    unknown (large P_ℓℓ, dilute start) is not updated as if e^ℓ were linear. With P_ℓℓ → 0 this is the
    EKF's Jacobian. y_lin = OD − E[h] + H m, so the linear update with (H, R, y_lin) is the SLR update.
    """
    variance = max(cov[LOG_BIOMASS, LOG_BIOMASS], 0.0)
    m = mean[LOG_BIOMASS]
    a, c = model[A_SLOPE], model[C_QUADRATIC]
    moment1 = math.exp(m + 0.5 * variance)
    slope = a * moment1
    spread = slope * slope * math.expm1(variance)  # a² Var X
    predicted = slope
    if c != 0.0:
        moment2 = math.exp(2.0 * m + 2.0 * variance)
        moment3 = math.exp(3.0 * m + 4.5 * variance)
        moment4 = math.exp(4.0 * m + 8.0 * variance)
        predicted += c * moment2
        slope += 2.0 * c * moment2
        spread += c * c * (moment4 - moment2 * moment2) + 2.0 * a * c * (moment3 - moment1 * moment2)
    predicted += mean[BASELINE]
    observation[0, LOG_BIOMASS] = slope
    observation[0, GROWTH_RATE] = 0.0
    observation[0, BASELINE] = 1.0
    observation[0, DRIFT] = 0.0
    level = max(abs(predicted), abs(od))
    linearisation = max(spread - slope * slope * variance, 0.0)
    noise[0, 0] = model[SIGMA_ABS] ** 2 + (model[SIGMA_REL] * level) ** 2 + linearisation
    linear = 0.0
    for i in range(N_GROWTH_STATE):
        linear += observation[0, i] * mean[i]
    measurement[0] = od - predicted + linear
    return predicted


@njit(cache=True, error_model="numpy", fastmath=FAST_FINITE_SAFE)
def od_innovation_variance(prior_cov: np.ndarray, slope: float, noise_variance: float) -> float:
    """s = H P⁻ Hᵀ + R for H = [h, 0, 1, 0]: h² P_ℓℓ + 2 h P_ℓb + P_bb + R."""
    return (noise_variance + slope * slope * prior_cov[LOG_BIOMASS, LOG_BIOMASS]
            + 2.0 * slope * prior_cov[LOG_BIOMASS, BASELINE] + prior_cov[BASELINE, BASELINE])


@njit(cache=True, error_model="numpy", fastmath=FAST_FINITE_SAFE)
def od_update(prior_mean: np.ndarray, prior_cov: np.ndarray, slope: float, innovation: float,
              innovation_variance: float, out_mean: np.ndarray, out_cov: np.ndarray) -> None:
    """The OD factor's update with H = [h, 0, 1, 0] written out (the scalar Kalman update of
    :func:`algaflow.fusion.gaussian.update_scalar` without its zero products):

        v = P⁻ Hᵀ = h P⁻_{:,ℓ} + P⁻_{:,b},   m = m⁻ + v ν / s,   P = P⁻ − v vᵀ / s
    """
    n = N_GROWTH_STATE
    v0 = slope * prior_cov[0, LOG_BIOMASS] + prior_cov[0, BASELINE]
    v1 = slope * prior_cov[1, LOG_BIOMASS] + prior_cov[1, BASELINE]
    v2 = slope * prior_cov[2, LOG_BIOMASS] + prior_cov[2, BASELINE]
    v3 = slope * prior_cov[3, LOG_BIOMASS] + prior_cov[3, BASELINE]
    scaled = innovation / innovation_variance
    out_mean[0] = prior_mean[0] + v0 * scaled
    out_mean[1] = prior_mean[1] + v1 * scaled
    out_mean[2] = prior_mean[2] + v2 * scaled
    out_mean[3] = prior_mean[3] + v3 * scaled
    inverse = 1.0 / innovation_variance
    w0, w1, w2, w3 = v0 * inverse, v1 * inverse, v2 * inverse, v3 * inverse
    v = (v0, v1, v2, v3)
    w = (w0, w1, w2, w3)
    for i in range(n):
        for j in range(i, n):
            value = prior_cov[i, j] - v[i] * w[j]
            out_cov[i, j] = value
            out_cov[j, i] = value


@njit(cache=True, error_model="numpy")
def od_update_linearised_at(prior_mean, prior_cov, at_mean, at_cov, od, noise_scale, model, out_mean, out_cov,
                            observation, noise, measurement) -> float:  # fmt: skip
    """Linearise the OD factor under N(at_mean, at_cov) (:func:`od_measurement_factor`; at_cov = 0 gives the
    Jacobian at at_mean) and apply it to the prior N(prior_mean, prior_cov) with R × ``noise_scale``:

        ν = y_lin − H m⁻ = y − E[h] + H (m_at − m⁻),   s = H P⁻ Hᵀ + R noise_scale

    Returns E[h] under the linearisation point. out_* may be at_* (they are read before being written)."""
    predicted = od_measurement_factor(at_mean, at_cov, od, model, observation, noise, measurement)
    slope = observation[0, LOG_BIOMASS]
    innovation = measurement[0] - slope * prior_mean[LOG_BIOMASS] - prior_mean[BASELINE]
    od_update(prior_mean, prior_cov, slope, innovation, od_innovation_variance(prior_cov, slope,
              noise[0, 0] * noise_scale), out_mean, out_cov)  # fmt: skip
    return predicted


# The OD factor is re-linearised at the posterior (:func:`iterated_od_update`) after a gap of at least
# ITERATE_AFTER_GAP_H that left var ln X above ITERATE_ABOVE_LOG_VARIANCE (10 % sd), when the reading net
# of the baseline is more than ITERATE_ABOVE_SIGNAL_SD noise sd: a dilute culture's reading bounds X only
# from above, Gauss–Newton on ln X would run off to −∞ there, and the prior's SLR is right.
ITERATE_AFTER_GAP_H = 1.0
ITERATE_ABOVE_LOG_VARIANCE = 0.01
ITERATE_ABOVE_SIGNAL_SD = 20.0
GAUSS_NEWTON_STEPS = 6


@njit(cache=True, error_model="numpy")
def iterated_od_update(prior_mean, prior_cov, od, weight, model, out_mean, out_cov, observation, noise, measurement,
                       point, flat) -> None:  # fmt: skip
    """The OD factor's update after a long gap (sparse manual samples, an outage) that left the prior on ℓ
    wide, for a reading well above noise: linearised at the posterior instead of the prior, whose
    log-normal moments (E X = e^{m + P/2}) would put the expected OD far above its median and drag μ down.

    Gauss–Newton (the iterated EKF): x_{i+1} = m⁻ + K_i (y − h(x_i) − H_i (m⁻ − x_i)) with H_i the Jacobian
    at x_i, from x_0 = m⁻; then the statistical linearisation (:func:`od_measurement_factor`) under the
    resulting posterior N(x_N, P_N), applied to the prior: posterior linearisation, whose Ω now reflects
    the curvature over the posterior's spread, not the prior's. ``weight`` is the Student-t weight on R;
    ``flat`` a zero n × n matrix, ``point`` n scratch values.
    """
    noise_scale = 1.0 / weight
    for i in range(N_GROWTH_STATE):
        point[i] = prior_mean[i]
    for _ in range(GAUSS_NEWTON_STEPS):
        predicted = od_update_linearised_at(prior_mean, prior_cov, point, flat, od, noise_scale, model, out_mean,
                                            out_cov, observation, noise, measurement)  # fmt: skip
        change = abs(out_mean[LOG_BIOMASS] - point[LOG_BIOMASS])
        for i in range(N_GROWTH_STATE):
            point[i] = out_mean[i]
        if change < 1e-6 or not math.isfinite(predicted):
            break
    od_update_linearised_at(prior_mean, prior_cov, out_mean, out_cov, od, noise_scale, model, out_mean, out_cov,
                            observation, noise, measurement)  # fmt: skip


@njit(cache=True, error_model="numpy")
def biomass_from_signal(signal: float, model: np.ndarray) -> float:
    """Invert the calibration curve: X ≥ 0 with a X + c X² = signal (OD minus intercept and baseline),
    X = 2 s / (a + √(a² + 4 c s)) (the root that tends to s/a as c → 0, without cancellation)."""
    a, c = model[A_SLOPE], model[C_QUADRATIC]
    discriminant = max(a * a + 4.0 * c * signal, 0.0)
    return 2.0 * signal / (a + math.sqrt(discriminant))


@njit(cache=True, error_model="numpy")
def first_valid_od(times: np.ndarray, od: np.ndarray, model: np.ndarray) -> float:
    """The first finite, plausible OD with a finite time (NaN if none)."""
    for k in range(od.shape[0]):
        value = od[k]
        if math.isfinite(value) and model[OD_MIN] <= value <= model[OD_MAX] and math.isfinite(times[k]):
            return value
    return math.nan


@njit(cache=True, error_model="numpy")
def initial_belief(first_od: float, model: np.ndarray, mean: np.ndarray, cov: np.ndarray) -> None:
    """Prior factor from the first sample: ℓ₀ = ln X(OD₀ − c0) through the calibration curve, with the
    sample's and the blank's uncertainty, var ℓ₀ = (2 σ_OD/OD₀)² + (σ_b0/OD₀)² (OD₀ net of c0);
    μ ~ N(0, σ_μ0²), b ~ N(c0, σ_b0²), d ~ N(0, σ_d0²)."""
    reading = first_od - model[C_INTERCEPT] if math.isfinite(first_od) else 0.1
    level = max(reading, 2.0 * model[SIGMA_ABS])
    mean[:] = 0.0
    mean[LOG_BIOMASS] = math.log(biomass_from_signal(level, model))
    mean[BASELINE] = model[C_INTERCEPT]
    relative_sd = math.sqrt(model[SIGMA_ABS] ** 2 + (model[SIGMA_REL] * level) ** 2) / level
    cov[:, :] = 0.0
    cov[LOG_BIOMASS, LOG_BIOMASS] = (2.0 * relative_sd) ** 2 + (model[BASE0_SD] / level) ** 2
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
LAST_TIME, PENDING_SURVIVAL, REJECTED_RUN_LENGTH = range(3)
N_CLOCK = 3


@njit(cache=True, error_model="numpy")
def start_clock(first_time: float, clock: np.ndarray) -> None:
    """The clock before the first sample: last time the first sample's (0 if not finite), nothing pending."""
    clock[LAST_TIME] = first_time if math.isfinite(first_time) else 0.0
    clock[PENDING_SURVIVAL] = 1.0
    clock[REJECTED_RUN_LENGTH] = 0.0


@njit(cache=True, error_model="numpy", fastmath=FAST_FINITE_SAFE)
def growth_step(time, value, dilution, rate_input, model, previous_mean, previous_cov, clock, rejected_run, mean,
                cov, prior_mean, prior_cov, transition, scratch) -> int:  # fmt: skip
    """One sample of the chain: the process factor from the previous belief to ``time`` (with the known
    dilution and rate input), then the robust OD factor (module doc). Writes the step's prior, transition
    and posterior; returns the sample's flag. ``clock`` (N_CLOCK) and ``rejected_run`` (the standardised
    innovations of the current run of rejections) carry the chain between calls; ``scratch`` is a
    :func:`step_scratch`."""
    n = N_GROWTH_STATE
    noise, observation, measurement_noise, measurement, point, flat = scratch
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
    shift = process_factor(dt, removed, model, transition, noise)
    predict_growth(previous_mean, previous_cov, dt, noise, prior_mean, prior_cov)
    prior_mean[LOG_BIOMASS] += shift + 0.5 * rate_input * dt
    prior_mean[GROWTH_RATE] += rate_input
    if flag != TIME_NOT_INCREASING:
        if math.isnan(value):
            flag = MISSING
        elif not math.isfinite(value) or value < model[OD_MIN] or value > model[OD_MAX]:
            flag = INVALID
    if flag != -1:  # no factor at this step: the belief is the prediction
        mean[:] = prior_mean
        cov[:, :] = prior_cov
        return flag
    predicted_od = od_measurement_factor(prior_mean, prior_cov, value, model, observation, measurement_noise,
                                         measurement)  # fmt: skip
    slope = observation[0, LOG_BIOMASS]
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
        # The level moved for real (an unannounced harvest or dilution): restart ℓ from this sample,
        # ln((OD − b)/a) with the sample's own uncertainty, keep μ and b, and take the sample.
        level = max(value - prior_mean[BASELINE], 10.0 * model[SIGMA_ABS])
        prior_mean[LOG_BIOMASS] = math.log(biomass_from_signal(level, model))
        for i in range(n):
            prior_cov[LOG_BIOMASS, i] = 0.0
            prior_cov[i, LOG_BIOMASS] = 0.0
        relative_variance = model[SIGMA_ABS] ** 2 / level**2 + model[SIGMA_REL] ** 2
        prior_cov[LOG_BIOMASS, LOG_BIOMASS] = 4.0 * relative_variance
        od_update_linearised_at(prior_mean, prior_cov, prior_mean, prior_cov, value, 1.0, model, mean, cov,
                                observation, measurement_noise, measurement)  # fmt: skip
        clock[REJECTED_RUN_LENGTH] = 0.0
        return LEVEL_JUMP
    clock[REJECTED_RUN_LENGTH] = 0.0
    # Student-t factor: R → R / w, w = (ν + 1)/(ν + r²) ≤ 1, so s grows by R (1/w − 1).
    weight = min((model[DOF] + 1.0) / (model[DOF] + standardised * standardised), 1.0)
    if (dt >= ITERATE_AFTER_GAP_H and prior_cov[LOG_BIOMASS, LOG_BIOMASS] > ITERATE_ABOVE_LOG_VARIANCE
            and value - prior_mean[BASELINE] > ITERATE_ABOVE_SIGNAL_SD * model[SIGMA_ABS]):
        iterated_od_update(prior_mean, prior_cov, value, weight, model, mean, cov, observation, measurement_noise,
                           measurement, point, flat)  # fmt: skip
    else:
        innovation_variance += measurement_noise[0, 0] * (1.0 / weight - 1.0)
        od_update(prior_mean, prior_cov, slope, innovation, innovation_variance, mean, cov)
    return DOWNWEIGHTED if weight < 0.5 else USED


@njit(cache=True, error_model="numpy")
def step_scratch():
    """Work arrays of :func:`growth_step`: Q, H, R, y, a Gauss–Newton point and a zero matrix."""
    n = N_GROWTH_STATE
    return (np.empty((n, n)), np.empty((1, n)), np.empty((1, 1)), np.empty(1), np.empty(n), np.zeros((n, n)))


@njit(cache=True, error_model="numpy", fastmath=FAST_FINITE_SAFE)
def _filter_unit(times, od, dilution, rate_input, model, mean, cov, predicted_mean, predicted_cov, transitions,
                 flags):  # fmt: skip
    steps = times.shape[0]
    n = N_GROWTH_STATE
    scratch = step_scratch()
    prior_mean = np.zeros(n)
    prior_cov = np.zeros((n, n))
    initial_belief(first_valid_od(times, od, model), model, prior_mean, prior_cov)
    clock = np.empty(N_CLOCK)
    start_clock(times[0], clock)
    rejected_run = np.zeros(max(int(model[JUMP_CONFIRMATIONS]), 1))
    keep = predicted_mean.shape[0] == steps  # store every step's prior (smoothing needs them), or only the last
    for k in range(steps):
        stored = k if keep else 0
        previous_mean = prior_mean if k == 0 else mean[k - 1]
        previous_cov = prior_cov if k == 0 else cov[k - 1]
        flags[k] = growth_step(times[k], od[k], dilution[k], rate_input[k], model, previous_mean, previous_cov,
                               clock, rejected_run, mean[k], cov[k], predicted_mean[stored], predicted_cov[stored],
                               transitions[stored], scratch)  # fmt: skip


@njit(cache=True, error_model="numpy", parallel=True)
def _filter_batch(times, od, dilution, rate_input, model, mean, cov, predicted_mean, predicted_cov, transitions,
                  flags):  # fmt: skip
    for u in prange(times.shape[0]):
        _filter_unit(times[u], od[u], dilution[u], rate_input[u], model, mean[u], cov[u], predicted_mean[u],
                     predicted_cov[u], transitions[u], flags[u])


@dataclass(slots=True)
class GrowthEstimates:
    """Per unit and sample: state means and covariances, sample flags, and the chain's transitions.

    predicted_* hold each step's prior (after any known dilution shift); at a level jump, the restarted one.
    """

    times_h: np.ndarray
    mean: np.ndarray  # (units, steps, N_GROWTH_STATE)
    cov: np.ndarray  # (units, steps, N_GROWTH_STATE, N_GROWTH_STATE)
    flags: np.ndarray  # (units, steps) codes of FLAG_NAMES
    predicted_mean: np.ndarray
    predicted_cov: np.ndarray
    transitions: np.ndarray

    @property
    def growth_rate_per_h(self) -> np.ndarray:
        return self.mean[..., GROWTH_RATE]

    @property
    def growth_rate_sd(self) -> np.ndarray:
        return np.sqrt(self.cov[..., GROWTH_RATE, GROWTH_RATE])

    @property
    def biomass_g_per_l(self) -> np.ndarray:
        """Median of the log-normal biomass, e^ℓ."""
        return np.exp(self.mean[..., LOG_BIOMASS])

    @property
    def biomass_sd(self) -> np.ndarray:
        """Delta-method sd of e^ℓ: e^ℓ σ_ℓ."""
        return self.biomass_g_per_l * np.sqrt(self.cov[..., LOG_BIOMASS, LOG_BIOMASS])


def dilution_before_samples(sample_times_h: np.ndarray, harvest_times_h: np.ndarray,
                            harvest_fractions: np.ndarray) -> np.ndarray:
    """Fraction removed just before each sample: a harvest at t_h acts on the first sample at or after t_h,
    several between two samples combine as 1 − Π(1 − f)."""
    sample_times_h = np.asarray(sample_times_h, dtype=float)
    survival = np.ones(sample_times_h.size)
    index = np.searchsorted(sample_times_h, np.asarray(harvest_times_h, dtype=float), side="left")
    for k, fraction in zip(index, np.asarray(harvest_fractions, dtype=float), strict=True):
        if k < sample_times_h.size:
            survival[k] *= 1.0 - fraction
    return 1.0 - survival


def filter_growth(times_h: np.ndarray, od: np.ndarray, dilution_fraction: np.ndarray | None = None,
                  model: GrowthModel | None = None, keep_priors: bool = True,
                  rate_input: np.ndarray | None = None) -> GrowthEstimates:  # fmt: skip
    """Causal estimates for a batch: times_h, od (units, steps) with NaN gaps; dilution_fraction (units, steps)
    is the known fraction removed (and replaced by medium) just before each sample, 0 where none.

    ``rate_input`` (units, steps): the model's expected change of μ just before each sample
    (fusion.expected_rate; the first entry is the model's μ, the prior mean): μ⁻ += u_k, ℓ⁻ += u_k Δt / 2
    (the step's trapezoid), and μ's random walk is then the model's error, with the smaller diffusion
    ``informed_growth_rate_diffusion``.

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
    flags = np.empty((units, steps), dtype=np.int64)
    if rate_input is None:
        rate_input = np.zeros_like(od)
    else:
        model = replace(model, growth_rate_diffusion=model.informed_growth_rate_diffusion)
    rate_input = np.ascontiguousarray(np.atleast_2d(rate_input), dtype=float)
    if rate_input.shape != od.shape or not np.isfinite(rate_input).all():
        raise ValueError(f"rate_input {rate_input.shape} must be finite and match od {od.shape}")
    _filter_batch(times_h, od, dilution_fraction, rate_input, model.as_array(), mean, cov, predicted_mean,
                  predicted_cov, transitions, flags)
    return GrowthEstimates(times_h, mean, cov, flags, predicted_mean, predicted_cov, transitions)


def smooth_growth(estimates: GrowthEstimates) -> SmootherResult:
    """Offline estimates: the RTS backward pass over the filter's chain (its stored priors and transitions,
    so known harvests shift the smoothed ℓ exactly as they shifted the filtered one)."""
    if estimates.predicted_mean.shape[1] != estimates.mean.shape[1]:
        raise ValueError("these estimates were filtered with keep_priors=False; smoothing needs every prior")
    smooth_mean = np.empty_like(estimates.mean)
    smooth_cov = np.empty_like(estimates.cov)
    gain = np.empty_like(estimates.cov)
    backward_pass(estimates.mean, estimates.cov, estimates.predicted_mean, estimates.predicted_cov,
                  estimates.transitions, smooth_mean, smooth_cov, gain)
    return SmootherResult(smooth_mean, smooth_cov, gain)
