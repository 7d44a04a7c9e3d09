"""The OD measurement factor of the growth chain (fusion.growth), in biomass and in log coordinates, and its
scalar update: OD = a X + c X² + b + v (the calibration curve, intercept c0 in the baseline b),
noise sd √(σ_abs² + (σ_rel OD)²), H = [∂OD/∂X or ∂OD/∂ℓ, 0, 1, 0]."""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from algaflow.fusion.gaussian import FAST_FINITE_SAFE
from algaflow.fusion.growth_model import (
    A_SLOPE,
    BASELINE,
    BIOMASS,
    C_QUADRATIC,
    DRIFT,
    GROWTH_RATE,
    N_GROWTH_STATE,
    SIGMA_ABS,
    SIGMA_REL,
)


@njit(cache=True, error_model="numpy")
def od_measurement_factor(mean: np.ndarray, cov: np.ndarray, od: float, model: np.ndarray,
                          observation: np.ndarray, noise: np.ndarray, measurement: np.ndarray) -> float:
    """The OD factor OD = a X + c X² + b (intercept c0 in b) under the prior N(mean, cov): fills H (1×4),
    R (1×1) and the equivalent linear measurement; returns the predicted OD E[h(z)].

    For c ≠ 0 it is the statistical linear regression, exact for a Gaussian prior (m, P the mean and
    variance of X):

        E[h] = a m + c (m² + P) + E b,   H = [a + 2c m, 0, 1, 0]   (Stein's lemma: E h'(X)),
        Ω = Var(a X + c X²) − H_X² P = 2 c² P²

    R = σ_abs² + (σ_rel OD)² + Ω; y_lin = OD − E[h] + H m, so the linear update with (H, R, y_lin) is the SLR
    update. For c = 0 it is the linear factor itself (Ω = 0).
    """
    variance = max(cov[BIOMASS, BIOMASS], 0.0)
    m = mean[BIOMASS]
    a, c = model[A_SLOPE], model[C_QUADRATIC]
    predicted = a * m + c * (m * m + variance) + mean[BASELINE]
    slope = a + 2.0 * c * m
    observation[0, BIOMASS] = slope
    observation[0, GROWTH_RATE] = 0.0
    observation[0, BASELINE] = 1.0
    observation[0, DRIFT] = 0.0
    level = max(abs(predicted), abs(od))
    noise[0, 0] = model[SIGMA_ABS] ** 2 + (model[SIGMA_REL] * level) ** 2 + 2.0 * c * c * variance * variance
    linear = 0.0
    for i in range(N_GROWTH_STATE):
        linear += observation[0, i] * mean[i]
    measurement[0] = od - predicted + linear
    return predicted


@njit(cache=True, error_model="numpy")
def log_od_measurement_factor(mean: np.ndarray, cov: np.ndarray, od: float, model: np.ndarray,
                          observation: np.ndarray, noise: np.ndarray, measurement: np.ndarray) -> float:
    """The OD factor in log coordinates (state ℓ = ln X in place of X): statistically linearise
    OD = a e^ℓ + c e^{2ℓ} + b (the calibration curve a X + c X², intercept in b) under the prior N(mean, cov):
    fills H (1×4), R (1×1) and the equivalent linear measurement; returns the predicted OD E[h(z)].

    The moments are exact for a Gaussian prior (X = e^ℓ log-normal), the limit of the sigma-point rule:

        E[X^j] = e^{j m_ℓ + j² P_ℓℓ/2},   Cov(z, g(ℓ)) = P_{:,ℓ} E[g'(ℓ)]   (Stein's lemma), g = a X + c X²
        H = [a E[X] + 2c E[X²], 0, 1, 0],  Ω = Var g − H_ℓ² P_ℓℓ,
        Var g = a² (E[X²] − E[X]²) + c² (E[X⁴] − E[X²]²) + 2ac (E[X³] − E[X] E[X²])

    R = σ_abs² + (σ_rel OD)² + Ω: the linearisation error Ω is noise, so a culture whose biomass is still
    unknown (large P_ℓℓ, dilute start) is not updated as if e^ℓ were linear. With P_ℓℓ → 0 this is the
    EKF's Jacobian. y_lin = OD − E[h] + H m, so the linear update with (H, R, y_lin) is the SLR update.
    """
    variance = max(cov[BIOMASS, BIOMASS], 0.0)
    m = mean[BIOMASS]
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
    observation[0, BIOMASS] = slope
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
    return (noise_variance + slope * slope * prior_cov[BIOMASS, BIOMASS]
            + 2.0 * slope * prior_cov[BIOMASS, BASELINE] + prior_cov[BASELINE, BASELINE])


@njit(cache=True, error_model="numpy", fastmath=FAST_FINITE_SAFE)
def od_update(prior_mean: np.ndarray, prior_cov: np.ndarray, slope: float, innovation: float,
              innovation_variance: float, out_mean: np.ndarray, out_cov: np.ndarray) -> None:
    """The OD factor's update with H = [h, 0, 1, 0] written out (the scalar Kalman update of
    :func:`algaflow.fusion.gaussian.update_scalar` without its zero products):

        v = P⁻ Hᵀ = h P⁻_{:,ℓ} + P⁻_{:,b},   m = m⁻ + v ν / s,   P = P⁻ − v vᵀ / s
    """
    n = N_GROWTH_STATE
    v0 = slope * prior_cov[0, BIOMASS] + prior_cov[0, BASELINE]
    v1 = slope * prior_cov[1, BIOMASS] + prior_cov[1, BASELINE]
    v2 = slope * prior_cov[2, BIOMASS] + prior_cov[2, BASELINE]
    v3 = slope * prior_cov[3, BIOMASS] + prior_cov[3, BASELINE]
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
def biomass_from_signal(signal: float, model: np.ndarray) -> float:
    """Invert the calibration curve: X ≥ 0 with a X + c X² = signal (OD minus intercept and baseline),
    X = 2 s / (a + √(a² + 4 c s)) (the root that tends to s/a as c → 0, without cancellation)."""
    a, c = model[A_SLOPE], model[C_QUADRATIC]
    discriminant = max(a * a + 4.0 * c * signal, 0.0)
    return 2.0 * signal / (a + math.sqrt(discriminant))
