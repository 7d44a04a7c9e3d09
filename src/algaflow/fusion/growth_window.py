"""How well the growth chain knows a change of biomass over a window, as against its level.

The chain's state z = (X, μ, b, d) holds the probe's baseline b (its offset after calibration) and the
baseline's drift d. A biomass estimate's error is largely the baseline's: a probe that reads 0.01 AU high
reads so at both ends of a day, and that part cancels in ln X̂(t) − ln X̂(s). With β = (b, d), the part of
X̂'s error that is its own is the conditional sd

    σ_ℓ² = P_XX − P_Xβ P_ββ⁻¹ P_βX,

and what the baseline can do between s and t, in biomass units through the local slope h'(X) = a + 2 c X
of the calibration curve s = c0 + a X + c X² + b, is its random walk and its drift:

    Var[Δb]/h'² ≈ (q_b (t − s) + P_dd (t − s)²) / h'²,

q_b the chain's baseline diffusion (OD²/h) and P_dd the drift's posterior variance: a single probe cannot
tell a slow drift from growth, so the drift's prior width stays in it. control.decisions judges the daily
net growth with these terms.
"""

from __future__ import annotations

import numpy as np

from algaflow.fusion.growth_model import A_SLOPE, BASELINE, BIOMASS, C_QUADRATIC, DRIFT, Q_BASE


def window_error_terms(mean: np.ndarray, cov: np.ndarray,
                       model: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:  # fmt: skip
    """Per sample of chain posteriors N(``mean``, ``cov``) (…, 4) and (…, 4, 4) under the chain's factor
    ``model`` (``GrowthModel.as_array()``, one for all samples or one each): σ_ℓ (g/L), q_b/h'² ((g/L)²/h) and
    P_dd/h'² ((g/L/h)²) of the module doc; NaN where the posterior is NaN."""
    model = np.asarray(model, dtype=float)
    mean, cov = np.asarray(mean, dtype=float), np.asarray(cov, dtype=float)
    shared = [BASELINE, DRIFT]
    cross = cov[..., BIOMASS, shared]  # P_Xβ
    block = cov[..., shared, :][..., :, shared]  # P_ββ
    # P_Xβ P_ββ⁻¹ P_βX for the 2 × 2 block in closed form (NaN where the posterior is)
    determinant = block[..., 0, 0] * block[..., 1, 1] - block[..., 0, 1] * block[..., 1, 0]
    with np.errstate(invalid="ignore", divide="ignore"):
        explained = (cross[..., 0] ** 2 * block[..., 1, 1] - 2.0 * cross[..., 0] * cross[..., 1] * block[..., 0, 1]
                     + cross[..., 1] ** 2 * block[..., 0, 0]) / determinant  # fmt: skip
        local = np.sqrt(np.maximum(cov[..., BIOMASS, BIOMASS] - explained, 0.0))
        local = np.where(np.isfinite(explained), local, np.sqrt(cov[..., BIOMASS, BIOMASS]))
    slope = np.maximum(model[..., A_SLOPE] + 2.0 * model[..., C_QUADRATIC] * mean[..., BIOMASS],
                       1e-12 * model[..., A_SLOPE])  # fmt: skip
    return local, model[..., Q_BASE] / slope**2, cov[..., DRIFT, DRIFT] / slope**2
