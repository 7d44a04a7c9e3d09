"""The growth chain's usual step written out on scalars: the process factor in X and a linear(ised) OD factor
that passes the gate, for the batch filter (fusion.growth).

It is fusion.growth_step.growth_step with ``in_log`` false, a valid reading and |r| ≤ gate, for
F = I but F_XX = g, F_Xμ = X⁻Δt, F_bd = Δt (A = F P, then P⁻ = A Fᵀ + Q) and the update with H = [h, 0, 1, 0]:

    v = P⁻Hᵀ,  s = H P⁻ Hᵀ + R / w,  m = m⁻ + v (OD − ÔD)/s,  P = P⁻ − v vᵀ/s

Why scalars: Numba takes and drops a reference, atomically, for every array handed to a compiled call, and
the array path's calls cost more in those than in arithmetic. This path hands none; the two give the same
numbers (tests).
"""

from __future__ import annotations

import math

from numba import njit

from algaflow.fusion.gaussian import FAST_FINITE_SAFE

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

