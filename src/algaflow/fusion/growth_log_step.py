"""The growth chain's step in log coordinates, z = (ℓ, μ, b, d) with ℓ = ln X, for a step whose growth factor
e^{μΔt} is uncertain (a sample a day, an outage): in ℓ the process is linear and exact however wide μ is,
where a Gaussian in X would put mass on negative biomass and its linearisation would lose the culture.

The belief is carried to ℓ and back by the change of variables at the mean (the delta method),
J = diag(1/X, 1, 1, 1), which is exact in both directions at the same point, so a chain of such steps is
the log-space filter itself:

    ℓ = ln X,   P_ℓ = J P Jᵀ;        X = e^ℓ,   P = J⁻¹ P_ℓ J⁻ᵀ  (J at the new mean)

Process factor in ℓ (exact for dℓ = μ dt + σ_ℓ dW, dμ = σ_μ dW, db = d dt + σ_b dW, dd = σ_d dW):

    ℓ_k = ℓ_{k−1} + μ_{k−1} Δt + ln(1 − f_k) + u_k Δt/2,  μ_k = μ_{k−1} + u_k,  b_k = b_{k−1} + d_{k−1} Δt
    Q = blocks (ℓ, μ): σ_μ² [[Δt³/3, Δt²/2], [Δt²/2, Δt]] + diag(σ_ℓ² Δt, 0), (b, d) the same with σ_d, σ_b

The OD factor in ℓ is statistically linearised (fusion.od_factor.log_od_measurement_factor) and, for a
reading well above noise after a long step, linearised at the posterior (:func:`iterated_od_update`).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from algaflow.fusion.gaussian import FAST_FINITE_SAFE
from algaflow.fusion.growth_model import (
    A_SLOPE,
    BASELINE,
    BIOMASS,
    DRIFT,
    GROWTH_RATE,
    N_GROWTH_STATE,
    Q_BASE,
    Q_DRIFT,
    Q_LOG,
    Q_MU,
    SIGMA_ABS,
)
from algaflow.fusion.od_factor import log_od_measurement_factor, od_innovation_variance, od_update


@njit(cache=True, error_model="numpy", fastmath=FAST_FINITE_SAFE)
def log_space_noise(dt: float, model: np.ndarray, noise: np.ndarray) -> None:
    """Q in log coordinates over dt hours (module doc): the exact discretisation of both integrated walks."""
    q = model[Q_MU]
    noise[:, :] = 0.0
    noise[BIOMASS, BIOMASS] = q * dt**3 / 3.0 + model[Q_LOG] * dt
    noise[BIOMASS, GROWTH_RATE] = q * dt**2 / 2.0
    noise[GROWTH_RATE, BIOMASS] = q * dt**2 / 2.0
    noise[GROWTH_RATE, GROWTH_RATE] = q * dt
    q = model[Q_DRIFT]
    noise[BASELINE, BASELINE] = q * dt**3 / 3.0 + model[Q_BASE] * dt
    noise[BASELINE, DRIFT] = q * dt**2 / 2.0
    noise[DRIFT, BASELINE] = q * dt**2 / 2.0
    noise[DRIFT, DRIFT] = q * dt


@njit(cache=True, error_model="numpy")
def lowest_log_biomass_point(model: np.ndarray) -> float:
    """The smallest X the change of variables is taken at: one OD noise sd through the calibration slope
    (a belief at or below zero biomass has no logarithm; the readings cannot tell apart less than that)."""
    return model[SIGMA_ABS] / model[A_SLOPE]


@njit(cache=True, error_model="numpy")
def to_log_coordinates(mean: np.ndarray, cov: np.ndarray, model: np.ndarray, out_mean: np.ndarray,
                       out_cov: np.ndarray) -> float:
    """ℓ = ln X at the mean (floored at :func:`lowest_log_biomass_point`), P_ℓ = J P Jᵀ; returns the X used."""
    biomass = max(mean[BIOMASS], lowest_log_biomass_point(model))
    change_to_log(mean, cov, biomass, out_mean, out_cov)
    return biomass


@njit(cache=True, error_model="numpy")
def change_to_log(mean: np.ndarray, cov: np.ndarray, biomass: float, out_mean: np.ndarray,
                  out_cov: np.ndarray) -> None:
    """The change of variables at the point X = ``biomass`` > 0: ℓ = ln X, P_ℓ = J P Jᵀ, J = diag(1/X, 1, 1, 1)
    (the exact inverse of :func:`from_log_coordinates` when ``biomass`` is the mean)."""
    for i in range(N_GROWTH_STATE):
        out_mean[i] = mean[i]
        for j in range(N_GROWTH_STATE):
            out_cov[i, j] = cov[i, j]
    out_mean[BIOMASS] = math.log(biomass)
    for i in range(N_GROWTH_STATE):
        out_cov[BIOMASS, i] /= biomass
        out_cov[i, BIOMASS] /= biomass


@njit(cache=True, error_model="numpy")
def from_log_coordinates(mean: np.ndarray, cov: np.ndarray) -> float:
    """In place: X = e^ℓ, P = J⁻¹ P_ℓ J⁻ᵀ with J⁻¹ = diag(X, 1, 1, 1); returns X."""
    biomass = math.exp(mean[BIOMASS])
    mean[BIOMASS] = biomass
    for i in range(N_GROWTH_STATE):
        cov[BIOMASS, i] *= biomass
        cov[i, BIOMASS] *= biomass
    return biomass


@njit(cache=True, error_model="numpy", fastmath=FAST_FINITE_SAFE)
def linear_process_rows(dt: float, rate_input: float, mean: np.ndarray, transition: np.ndarray,
                        out_mean: np.ndarray) -> None:
    """What the process factor is in either coordinates: μ_k = μ + u, b_k = b + d Δt, d_k = d, and F the
    identity but F_bd = Δt; the caller fills the biomass row (X or ℓ)."""
    out_mean[GROWTH_RATE] = mean[GROWTH_RATE] + rate_input
    out_mean[BASELINE] = mean[BASELINE] + dt * mean[DRIFT]
    out_mean[DRIFT] = mean[DRIFT]
    transition[:, :] = 0.0
    for i in range(N_GROWTH_STATE):
        transition[i, i] = 1.0
    transition[BASELINE, DRIFT] = dt


@njit(cache=True, error_model="numpy", fastmath=FAST_FINITE_SAFE)
def log_process_factor(dt: float, survival: float, rate_input: float, model: np.ndarray, mean: np.ndarray,
                       transition: np.ndarray, noise: np.ndarray, out_mean: np.ndarray) -> None:
    """The process factor in log coordinates (module doc): predicted mean, F and Q."""
    linear_process_rows(dt, rate_input, mean, transition, out_mean)
    out_mean[BIOMASS] = mean[BIOMASS] + mean[GROWTH_RATE] * dt + math.log(survival) + 0.5 * rate_input * dt
    transition[BIOMASS, GROWTH_RATE] = dt
    log_space_noise(dt, model, noise)


@njit(cache=True, error_model="numpy")
def od_update_linearised_at(prior_mean, prior_cov, at_mean, at_cov, od, noise_scale, model, out_mean, out_cov,
                            observation, noise, measurement) -> float:  # fmt: skip
    """Linearise the log-coordinate OD factor under N(at_mean, at_cov) (at_cov = 0 gives the Jacobian at
    at_mean) and apply it to the prior N(prior_mean, prior_cov) with R × ``noise_scale``:

        ν = y_lin − H m⁻ = y − E[h] + H (m_at − m⁻),   s = H P⁻ Hᵀ + R noise_scale

    Returns E[h] under the linearisation point. out_* may be at_* (they are read before being written)."""
    predicted = log_od_measurement_factor(at_mean, at_cov, od, model, observation, noise, measurement)
    slope = observation[0, BIOMASS]
    innovation = measurement[0] - slope * prior_mean[BIOMASS] - prior_mean[BASELINE]
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
def iterate_here(dt: float, prior_mean: np.ndarray, prior_cov: np.ndarray, value: float, model: np.ndarray) -> bool:
    """Whether the log-coordinate OD factor is linearised at the posterior (the ITERATE_* conditions)."""
    return (dt >= ITERATE_AFTER_GAP_H and prior_cov[BIOMASS, BIOMASS] > ITERATE_ABOVE_LOG_VARIANCE
            and value - prior_mean[BASELINE] > ITERATE_ABOVE_SIGNAL_SD * model[SIGMA_ABS])


@njit(cache=True, error_model="numpy")
def iterated_od_update(prior_mean, prior_cov, od, weight, model, out_mean, out_cov, observation, noise, measurement,
                       point, flat) -> None:  # fmt: skip
    """The log-coordinate OD factor's update after a long step that left the prior on ℓ wide, for a reading
    well above noise: linearised at the posterior instead of the prior, whose log-normal moments
    (E X = e^{m + P/2}) would put the expected OD far above its median and drag μ down.

    Gauss–Newton (the iterated EKF): x_{i+1} = m⁻ + K_i (y − h(x_i) − H_i (m⁻ − x_i)) with H_i the Jacobian
    at x_i, from x_0 = m⁻; then the statistical linearisation under the resulting posterior N(x_N, P_N),
    applied to the prior: posterior linearisation, whose Ω now reflects the curvature over the posterior's
    spread, not the prior's. ``weight`` is the Student-t weight on R; ``flat`` a zero n × n matrix,
    ``point`` n scratch values.
    """
    noise_scale = 1.0 / weight
    for i in range(N_GROWTH_STATE):
        point[i] = prior_mean[i]
    for _ in range(GAUSS_NEWTON_STEPS):
        predicted = od_update_linearised_at(prior_mean, prior_cov, point, flat, od, noise_scale, model, out_mean,
                                            out_cov, observation, noise, measurement)  # fmt: skip
        change = abs(out_mean[BIOMASS] - point[BIOMASS])
        for i in range(N_GROWTH_STATE):
            point[i] = out_mean[i]
        if change < 1e-6 or not math.isfinite(predicted):
            break
    od_update_linearised_at(prior_mean, prior_cov, out_mean, out_cov, od, noise_scale, model, out_mean, out_cov,
                            observation, noise, measurement)  # fmt: skip
