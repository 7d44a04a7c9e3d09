"""Linearising a non-linear measurement factor y = h(x) + v, v ~ N(0, R), under a Gaussian belief N(m, P).

Either way the result is a linear factor y ≈ H x + b + e with e ~ N(0, R + Ω), which the Gaussian message
passing of :mod:`algaflow.fusion.gaussian` then treats exactly (``update`` with y − b):

* EKF-style (first-order Taylor at m): H = ∂h/∂x (m), b = h(m) − H m, Ω = 0.
* Sigma points (statistical linear regression, the unscented transform of Julier & Uhlmann with the
  scaled points of Wan & van der Merwe 2000): with λ = α² (n + κ) − n and L Lᵀ = (n + λ) P,

      χ₀ = m,  χ_i = m + L_{:,i},  χ_{n+i} = m − L_{:,i}                    (i = 1 … n)
      w^m_0 = λ/(n + λ),  w^c_0 = w^m_0 + 1 − α² + β,  w_i = 1/(2(n + λ))
      ŷ = Σ w^m_i h(χ_i),  P_xy = Σ w^c_i (χ_i − m)(h(χ_i) − ŷ)ᵀ,  P_yy = Σ w^c_i (h(χ_i) − ŷ)(…)ᵀ
      H = P_xyᵀ P⁻¹,  b = ŷ − H m,  Ω = P_yy − H P Hᵀ   (what the line does not explain, counted as noise)

  The update with (H, R + Ω, y − b) is the unscented Kalman filter's update exactly.

Batched: mean (units, n), cov (units, n, n); ``function`` maps points (units, points, n) to
(units, points, m), vectorised. :func:`algaflow.fusion.growth.od_measurement_factor` is the sigma-point
rule's limit for the OD curve, with the log-normal moments in closed form.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from algaflow.fusion.gaussian import update

MeasurementFunction = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True, slots=True)
class SigmaPointRule:
    """Scaled sigma points: spread α, prior knowledge β (2 is optimal for a Gaussian), secondary scale κ."""

    alpha: float = 1.0
    beta: float = 2.0
    kappa: float = 0.0

    def __post_init__(self) -> None:
        if not self.alpha > 0:
            raise ValueError(f"SigmaPointRule.alpha must be > 0 (got {self.alpha})")

    def spread(self, n: int) -> float:
        """n + λ = α² (n + κ); must be > 0."""
        total = self.alpha**2 * (n + self.kappa)
        if not total > 0:
            raise ValueError(f"α² (n + κ) must be > 0 for n = {n} (got {total})")
        return total

    def weights(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """(w^m, w^c), each of length 2n + 1."""
        total = self.spread(n)
        lam = total - n
        mean_weights = np.full(2 * n + 1, 0.5 / total)
        cov_weights = mean_weights.copy()
        mean_weights[0] = lam / total
        cov_weights[0] = lam / total + 1.0 - self.alpha**2 + self.beta
        return mean_weights, cov_weights

    def points(self, mean: np.ndarray, cov: np.ndarray) -> np.ndarray:
        """χ (units, 2n + 1, n) from the lower Cholesky factor of (n + λ) P."""
        mean = np.atleast_2d(np.asarray(mean, dtype=float))
        n = mean.shape[-1]
        factor = np.linalg.cholesky(self.spread(n) * np.asarray(cov, dtype=float))  # (units, n, n)
        columns = np.swapaxes(factor, -1, -2)  # row i = column i of L
        return np.concatenate([mean[:, None, :], mean[:, None, :] + columns, mean[:, None, :] - columns], axis=1)


@dataclass(slots=True)
class LinearisedFactor:
    """y ≈ H x + offset + e, e ~ N(0, R + linearisation_noise); ``predicted`` = E[h(x)] (or h(m))."""

    observation: np.ndarray  # H (units, m, n)
    offset: np.ndarray  # b (units, m)
    predicted: np.ndarray  # (units, m)
    linearisation_noise: np.ndarray  # Ω (units, m, m)


def sigma_point_linearisation(mean: np.ndarray, cov: np.ndarray, function: MeasurementFunction,
                              rule: SigmaPointRule | None = None) -> LinearisedFactor:  # fmt: skip
    """Statistical linear regression of h under N(mean, cov) by sigma points (module doc)."""
    rule = rule or SigmaPointRule()
    mean = np.atleast_2d(np.asarray(mean, dtype=float))
    cov = np.broadcast_to(np.asarray(cov, dtype=float), (*mean.shape, mean.shape[-1]))
    n = mean.shape[-1]
    mean_weights, cov_weights = rule.weights(n)
    points = rule.points(mean, cov)
    images = np.asarray(function(points), dtype=float)
    if images.ndim != 3 or images.shape[:2] != points.shape[:2]:
        raise ValueError(f"function must map points {points.shape} to (units, {2 * n + 1}, m), got {images.shape}")
    predicted = np.einsum("p,upm->um", mean_weights, images)
    state_residual = points - mean[:, None, :]
    image_residual = images - predicted[:, None, :]
    cross = np.einsum("p,upi,upj->uij", cov_weights, state_residual, image_residual)  # P_xy (units, n, m)
    image_cov = np.einsum("p,upi,upj->uij", cov_weights, image_residual, image_residual)
    observation = np.swapaxes(np.linalg.solve(cov, cross), -1, -2)  # H = P_xyᵀ P⁻¹ (P symmetric)
    explained = observation @ cross  # H P Hᵀ = P_xyᵀ P⁻¹ P_xy
    residual_cov = image_cov - explained
    residual_cov = 0.5 * (residual_cov + np.swapaxes(residual_cov, -1, -2))
    offset = predicted - np.einsum("umn,un->um", observation, mean)
    return LinearisedFactor(observation, offset, predicted, residual_cov)


def jacobian_linearisation(mean: np.ndarray, function: MeasurementFunction,
                           jacobian: Callable[[np.ndarray], np.ndarray]) -> LinearisedFactor:  # fmt: skip
    """EKF-style: H = ∂h/∂x at the mean (``jacobian`` maps (units, 1, n) to (units, m, n)), Ω = 0."""
    mean = np.atleast_2d(np.asarray(mean, dtype=float))
    predicted = np.asarray(function(mean[:, None, :]), dtype=float)[:, 0, :]
    observation = np.asarray(jacobian(mean[:, None, :]), dtype=float)
    offset = predicted - np.einsum("umn,un->um", observation, mean)
    m = predicted.shape[-1]
    return LinearisedFactor(observation, offset, predicted, np.zeros((mean.shape[0], m, m)))


def linearised_update(mean: np.ndarray, cov: np.ndarray, factor: LinearisedFactor, noise: np.ndarray,
                      measurement: np.ndarray) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """Posterior of every unit after the linearised factor: the linear update with (H, R + Ω, y − b).
    NaN rows of ``measurement`` (units, m) are absent."""
    mean = np.atleast_2d(np.asarray(mean, dtype=float))
    units, n = mean.shape
    cov = np.broadcast_to(np.asarray(cov, dtype=float), (units, n, n))
    measurement = np.asarray(measurement, dtype=float).reshape(units, -1)
    m = measurement.shape[1]
    total_noise = np.broadcast_to(np.asarray(noise, dtype=float), (units, m, m)) + factor.linearisation_noise
    shifted = measurement - factor.offset
    out_mean = np.empty((units, n))
    out_cov = np.empty((units, n, n))
    for u in range(units):
        update(np.ascontiguousarray(mean[u]), np.ascontiguousarray(cov[u]),
               np.ascontiguousarray(factor.observation[u]), np.ascontiguousarray(total_noise[u]), shifted[u],
               out_mean[u], out_cov[u])  # fmt: skip
    return out_mean, out_cov
