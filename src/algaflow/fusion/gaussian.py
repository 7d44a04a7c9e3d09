"""Gaussian message passing on a chain factor graph: the forward filter and the RTS smoother, batched.

The graph of one unit is a chain of state variables x_0 … x_{T−1} (dimension n) with three kinds of
Gaussian factor:

    prior          p(x_{−1}) = N(m₀, P₀)                                  (the state before the first step)
    process        p(x_k | x_{k−1}) = N(F_k x_{k−1}, Q_k)
    measurement    p(y_k | x_k) = N(H_k x_k, R_k)           (rows of y_k that are NaN are absent factors)

Forward messages (the filter, moment form) at each step k:

    predict   m⁻ = F m,   P⁻ = F P Fᵀ + Q
    update    S = H P⁻ Hᵀ + R,  K = P⁻ Hᵀ S⁻¹,  m = m⁻ + K (y − H m⁻),
              P = (I − K H) P⁻ (I − K H)ᵀ + K R Kᵀ                              (Joseph form, stays symmetric)

restricted to the observed rows of y_k. The log-likelihood adds −½ (νᵀ S⁻¹ ν + log det 2πS), ν = y − H m⁻.
Backward messages combined with the forward ones give the smoothed marginals (Rauch, Tung & Striebel 1965):

    G_k = P_k F_{k+1}ᵀ (P⁻_{k+1})⁻¹,  m^s_k = m_k + G_k (m^s_{k+1} − m⁻_{k+1}),
    P^s_k = P_k + G_k (P^s_{k+1} − P⁻_{k+1}) G_kᵀ.

Kalman filtering and RTS smoothing are exactly these passes; ``tests/fusion/test_gaussian.py`` checks them
against FilterPy. Every array carries a leading batch axis (units); one unit is a batch of one. Model
arrays may be broadcast views (``np.broadcast_to``) when they do not vary over units or time.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numba import njit, prange

# Fast-math flags that keep NaN and infinity semantics (missing samples are NaN and must stay detectable):
# contraction into FMA, reassociation, reciprocal approximations, no signed zeros, approximate functions.
FAST_FINITE_SAFE = {"contract", "reassoc", "arcp", "nsz", "afn"}
LOG_2PI = math.log(2.0 * math.pi)


@dataclass(slots=True)
class FilterResult:
    """Forward pass: filtered and predicted moments per unit and step, and each unit's log-likelihood."""

    mean: np.ndarray  # (units, steps, n)
    cov: np.ndarray  # (units, steps, n, n)
    predicted_mean: np.ndarray
    predicted_cov: np.ndarray
    log_likelihood: np.ndarray  # (units,)


@dataclass(slots=True)
class SmootherResult:
    """Backward pass: smoothed moments and the smoother gains G_k."""

    mean: np.ndarray
    cov: np.ndarray
    gain: np.ndarray


@njit(cache=True, error_model="numpy")
def _cholesky_in_place(a: np.ndarray) -> bool:
    """Lower Cholesky factor of the symmetric positive-definite a (lower triangle overwritten)."""
    n = a.shape[0]
    for j in range(n):
        diagonal = a[j, j]
        for k in range(j):
            diagonal -= a[j, k] * a[j, k]
        if not diagonal > 0.0:
            return False
        diagonal = math.sqrt(diagonal)
        a[j, j] = diagonal
        for i in range(j + 1, n):
            value = a[i, j]
            for k in range(j):
                value -= a[i, k] * a[j, k]
            a[i, j] = value / diagonal
    return True


@njit(cache=True, error_model="numpy")
def _cholesky_solve(factor: np.ndarray, b: np.ndarray) -> None:
    """Solve (L Lᵀ) x = b in place for every column of b."""
    n = factor.shape[0]
    for c in range(b.shape[1]):
        for i in range(n):
            value = b[i, c]
            for k in range(i):
                value -= factor[i, k] * b[k, c]
            b[i, c] = value / factor[i, i]
        for i in range(n - 1, -1, -1):
            value = b[i, c]
            for k in range(i + 1, n):
                value -= factor[k, i] * b[k, c]
            b[i, c] = value / factor[i, i]


@njit(cache=True, error_model="numpy")
def _product(a: np.ndarray, b: np.ndarray, out: np.ndarray) -> None:
    """out = a b."""
    for i in range(a.shape[0]):
        for j in range(b.shape[1]):
            value = 0.0
            for k in range(a.shape[1]):
                value += a[i, k] * b[k, j]
            out[i, j] = value


@njit(cache=True, error_model="numpy")
def _product_transposed(a: np.ndarray, b: np.ndarray, addend: np.ndarray, out: np.ndarray) -> None:
    """out = addend + a bᵀ."""
    for i in range(a.shape[0]):
        for j in range(b.shape[0]):
            value = addend[i, j]
            for k in range(a.shape[1]):
                value += a[i, k] * b[j, k]
            out[i, j] = value


@njit(cache=True, error_model="numpy")
def predict(mean, cov, transition, process_noise, out_mean, out_cov) -> None:
    """Process factor: m⁻ = F m, P⁻ = F P Fᵀ + Q (one unit)."""
    n = mean.shape[0]
    for i in range(n):
        value = 0.0
        for k in range(n):
            value += transition[i, k] * mean[k]
        out_mean[i] = value
    fp = np.empty((n, n))
    _product(transition, cov, fp)
    _product_transposed(fp, transition, process_noise, out_cov)


@njit(cache=True, error_model="numpy", fastmath=FAST_FINITE_SAFE)
def update_scalar(mean, cov, observation_row, noise_variance, measurement, out_mean, out_cov, work) -> float:
    """One scalar measurement factor y = hᵀz + v, v ~ N(0, r), without allocation (``work``: n scratch).

    v = P h, s = hᵀ v + r, m' = m + v (y − hᵀm)/s, P' = P − v vᵀ/s (built symmetric; for a scalar
    factor with the optimal gain this equals the Joseph form exactly). Returns the log-likelihood term,
    or NaN, with the belief unchanged, if s ≤ 0. out_* may be the inputs themselves.
    """
    n = mean.shape[0]
    predicted = 0.0
    for i in range(n):
        value = 0.0
        for k in range(n):
            value += cov[i, k] * observation_row[k]
        work[i] = value
        predicted += observation_row[i] * mean[i]
    variance = noise_variance
    for i in range(n):
        variance += observation_row[i] * work[i]
    if not variance > 0.0:
        if out_mean is not mean:
            out_mean[:] = mean
            out_cov[:, :] = cov
        return math.nan
    innovation = measurement - predicted
    scaled = innovation / variance
    for i in range(n):
        out_mean[i] = mean[i] + work[i] * scaled
    for i in range(n):
        for j in range(i, n):
            value = cov[i, j] - work[i] * work[j] / variance
            out_cov[i, j] = value
            out_cov[j, i] = value
    return -0.5 * (innovation * scaled + math.log(variance) + LOG_2PI)


@njit(cache=True, error_model="numpy")
def update(mean, cov, observation, observation_noise, measurement, out_mean, out_cov) -> float:
    """Measurement factor on the observed (non-NaN) rows of y; returns its log-likelihood term (0 if none).

    out_mean/out_cov may be mean/cov themselves. A non-positive-definite innovation covariance leaves the
    belief unchanged and returns NaN, so the caller can record why.
    """
    n = mean.shape[0]
    rows = 0
    for r in range(measurement.shape[0]):
        if not math.isnan(measurement[r]):
            rows += 1
    if rows == 0:
        if out_mean is not mean:
            out_mean[:] = mean
            out_cov[:, :] = cov
        return 0.0
    index = np.empty(rows, dtype=np.int64)
    q = 0
    for r in range(measurement.shape[0]):
        if not math.isnan(measurement[r]):
            index[q] = r
            q += 1
    # ph = P Hᵀ (n × rows), S = H P Hᵀ + R, ν = y − H m
    ph = np.empty((n, rows))
    for i in range(n):
        for a in range(rows):
            value = 0.0
            for k in range(n):
                value += cov[i, k] * observation[index[a], k]
            ph[i, a] = value
    s = np.empty((rows, rows))
    innovation = np.empty((rows, 1))
    for a in range(rows):
        predicted = 0.0
        for k in range(n):
            predicted += observation[index[a], k] * mean[k]
        innovation[a, 0] = measurement[index[a]] - predicted
        for b in range(rows):
            value = observation_noise[index[a], index[b]]
            for k in range(n):
                value += observation[index[a], k] * ph[k, b]
            s[a, b] = value
    factor = s.copy()
    if not _cholesky_in_place(factor):
        if out_mean is not mean:
            out_mean[:] = mean
            out_cov[:, :] = cov
        return math.nan
    log_det = 0.0
    for a in range(rows):
        log_det += 2.0 * math.log(factor[a, a])
    weighted = innovation.copy()
    _cholesky_solve(factor, weighted)  # S⁻¹ ν
    mahalanobis = 0.0
    for a in range(rows):
        mahalanobis += innovation[a, 0] * weighted[a, 0]
    # Kᵀ = S⁻¹ (P Hᵀ)ᵀ  (rows × n)
    gain_t = np.empty((rows, n))
    for a in range(rows):
        for i in range(n):
            gain_t[a, i] = ph[i, a]
    _cholesky_solve(factor, gain_t)
    new_mean = np.empty(n)
    for i in range(n):
        value = mean[i]
        for a in range(rows):
            value += gain_t[a, i] * innovation[a, 0]
        new_mean[i] = value
    # Joseph form: A = I − K H, P = A P Aᵀ + K R Kᵀ
    a_matrix = np.empty((n, n))
    for i in range(n):
        for j in range(n):
            value = 1.0 if i == j else 0.0
            for b in range(rows):
                value -= gain_t[b, i] * observation[index[b], j]
            a_matrix[i, j] = value
    ap = np.empty((n, n))
    _product(a_matrix, cov, ap)
    kr = np.empty((n, rows))
    for i in range(n):
        for b in range(rows):
            value = 0.0
            for c in range(rows):
                value += gain_t[c, i] * observation_noise[index[c], index[b]]
            kr[i, b] = value
    for i in range(n):
        for j in range(n):
            value = 0.0
            for k in range(n):
                value += ap[i, k] * a_matrix[j, k]
            for b in range(rows):
                value += kr[i, b] * gain_t[b, j]
            out_cov[i, j] = value
    for i in range(n):
        out_mean[i] = new_mean[i]
    return -0.5 * (mahalanobis + log_det + rows * LOG_2PI)


@njit(cache=True, error_model="numpy", parallel=True)
def _forward(prior_mean, prior_cov, transition, process_noise, observation, observation_noise, measurements,
             mean, cov, predicted_mean, predicted_cov, log_likelihood):
    for u in prange(measurements.shape[0]):
        total = 0.0
        for k in range(measurements.shape[1]):
            if k == 0:
                predict(prior_mean[u], prior_cov[u], transition[u, k], process_noise[u, k],
                        predicted_mean[u, k], predicted_cov[u, k])
            else:
                predict(mean[u, k - 1], cov[u, k - 1], transition[u, k], process_noise[u, k],
                        predicted_mean[u, k], predicted_cov[u, k])
            total += update(predicted_mean[u, k], predicted_cov[u, k], observation[u, k], observation_noise[u, k],
                            measurements[u, k], mean[u, k], cov[u, k])
        log_likelihood[u] = total


@njit(cache=True, error_model="numpy")
def _inverse_spd(a: np.ndarray) -> np.ndarray:
    n = a.shape[0]
    factor = a.copy()
    if not _cholesky_in_place(factor):
        return np.full((n, n), np.nan)
    out = np.eye(n)
    _cholesky_solve(factor, out)
    return out


@njit(cache=True, error_model="numpy")
def rts_step(mean, cov, predicted_mean, predicted_cov, transition, smooth_mean, smooth_cov, out_mean, out_cov, gain,
             scratch_a, scratch_b) -> None:  # fmt: skip
    """One RTS step back: G = P_k F_{k+1}ᵀ (P⁻_{k+1})⁻¹, m^s_k = m_k + G (m^s_{k+1} − m⁻_{k+1}),
    P^s_k = P_k + G (P^s_{k+1} − P⁻_{k+1}) Gᵀ. ``scratch_a``, ``scratch_b``: n × n work arrays."""
    n = mean.shape[0]
    inverse = _inverse_spd(predicted_cov)
    scratch_a[:, :] = 0.0
    _product_transposed(cov, transition, scratch_a, scratch_b)  # P_k F_{k+1}ᵀ
    _product(scratch_b, inverse, gain)
    for i in range(n):
        value = mean[i]
        for q in range(n):
            value += gain[i, q] * (smooth_mean[q] - predicted_mean[q])
        out_mean[i] = value
    difference = smooth_cov - predicted_cov
    _product(gain, difference, scratch_a)
    _product_transposed(scratch_a, gain, cov, out_cov)


@njit(cache=True, error_model="numpy", parallel=True)
def backward_pass(mean, cov, predicted_mean, predicted_cov, transition, smooth_mean, smooth_cov, gain):
    """RTS (:func:`rts_step`) for every unit (batch) from the last step back."""
    units, steps, n = mean.shape
    for u in prange(units):
        scratch_a = np.empty((n, n))
        scratch_b = np.empty((n, n))
        smooth_mean[u, steps - 1] = mean[u, steps - 1]
        smooth_cov[u, steps - 1] = cov[u, steps - 1]
        gain[u, steps - 1] = 0.0
        for k in range(steps - 2, -1, -1):
            rts_step(mean[u, k], cov[u, k], predicted_mean[u, k + 1], predicted_cov[u, k + 1], transition[u, k + 1],
                     smooth_mean[u, k + 1], smooth_cov[u, k + 1], smooth_mean[u, k], smooth_cov[u, k], gain[u, k],
                     scratch_a, scratch_b)  # fmt: skip


def _batched(array: np.ndarray, units: int, steps: int, tail: int, name: str) -> np.ndarray:
    """Broadcast a model array to (units, steps, *tail shape) without copying."""
    array = np.asarray(array, dtype=float)
    if array.ndim < tail:
        raise ValueError(f"{name}: expected at least {tail} dimensions, got shape {array.shape}")
    shape = (units, steps, *array.shape[array.ndim - tail:])
    try:
        return np.broadcast_to(array, shape)
    except ValueError:
        raise ValueError(f"{name}: shape {array.shape} does not broadcast to (units, steps, ...) = {shape}") from None


def forward_filter(
    prior_mean: np.ndarray, prior_cov: np.ndarray, transition: np.ndarray, process_noise: np.ndarray,
    observation: np.ndarray, observation_noise: np.ndarray, measurements: np.ndarray,
) -> FilterResult:
    """Filter a batch: measurements (units, steps, m) with NaN where absent; model arrays broadcast.

    transition, process_noise: (…, n, n); observation: (…, m, n); observation_noise: (…, m, m), where … is
    (units, steps), (steps,), (units, 1) or nothing.
    """
    measurements = np.asarray(measurements, dtype=float)
    if measurements.ndim != 3:
        raise ValueError(f"measurements: expected (units, steps, m), got shape {measurements.shape}")
    units, steps, m = measurements.shape
    prior_mean = np.asarray(prior_mean, dtype=float)
    n = prior_mean.shape[-1]
    prior_mean = np.ascontiguousarray(np.broadcast_to(prior_mean, (units, n)))
    prior_cov = np.ascontiguousarray(np.broadcast_to(np.asarray(prior_cov, dtype=float), (units, n, n)))
    transition = _batched(transition, units, steps, 2, "transition")
    process_noise = _batched(process_noise, units, steps, 2, "process_noise")
    observation = _batched(observation, units, steps, 2, "observation")
    observation_noise = _batched(observation_noise, units, steps, 2, "observation_noise")
    if transition.shape[-2:] != (n, n) or process_noise.shape[-2:] != (n, n):
        raise ValueError(f"transition and process_noise must be {n}×{n} for a state of dimension {n}")
    if observation.shape[-2:] != (m, n) or observation_noise.shape[-2:] != (m, m):
        raise ValueError(f"observation must be {m}×{n} and observation_noise {m}×{m} for {m} measurements")
    mean = np.empty((units, steps, n))
    cov = np.empty((units, steps, n, n))
    predicted_mean = np.empty((units, steps, n))
    predicted_cov = np.empty((units, steps, n, n))
    log_likelihood = np.empty(units)
    _forward(prior_mean, prior_cov, transition, process_noise, observation, observation_noise, measurements,
             mean, cov, predicted_mean, predicted_cov, log_likelihood)
    return FilterResult(mean, cov, predicted_mean, predicted_cov, log_likelihood)


def rts_smoother(filtered: FilterResult, transition: np.ndarray) -> SmootherResult:
    """Smooth a forward pass; ``transition`` as given to :func:`forward_filter`."""
    units, steps = filtered.mean.shape[:2]
    transition = _batched(transition, units, steps, 2, "transition")
    smooth_mean = np.empty_like(filtered.mean)
    smooth_cov = np.empty_like(filtered.cov)
    gain = np.empty_like(filtered.cov)
    backward_pass(filtered.mean, filtered.cov, filtered.predicted_mean, filtered.predicted_cov, transition,
                  smooth_mean, smooth_cov, gain)
    return SmootherResult(smooth_mean, smooth_cov, gain)
