"""Harvest advisor: is growth over? The probability that the growth rate has fallen below a threshold.

With the estimate μ ~ N(μ̂, σ²) (fusion), the probability that the culture has stopped growing is

    p = P(μ < θ) = Φ((θ − μ̂) / σ)

and the advice switches on with hysteresis: ``ready`` once p ≥ p_on while the biomass is worth
harvesting (X ≥ X_min), and off again only when p < p_off (p_off < p_on), so the flag does not chatter on
a noisy estimate.

Forecast (:func:`hours_until_growth_stops`): the growth rate's trend over the last ``window_h`` hours,
μ̂(t) ≈ μ̂_now + s (t − now) by least squares, reaches θ after (μ̂_now − θ)/(−s) hours when s < 0 (0 when
μ̂_now ≤ θ already, ∞ while μ̂ is not falling).

Recommended fraction (:func:`recommended_fraction`): volumetric productivity μ X is highest at some
density X*; harvesting f = 1 − X*/X returns the culture there. X* is read from the unit's own history,
the biomass at which μ̂ X̂ has been highest so far (for a logistic culture, X* = K/2 exactly).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import ndtr

from algaflow.control.hysteresis import latch


@dataclass(frozen=True, slots=True)
class HarvestPolicy:
    growth_threshold_per_h: float = 0.1 / 24.0  # θ: 0.1 per day
    probability_on: float = 0.9
    probability_off: float = 0.5
    min_biomass_g_per_l: float = 0.5
    fraction: float = 0.7

    def __post_init__(self) -> None:
        if not 0.0 < self.probability_off < self.probability_on < 1.0:
            raise ValueError("HarvestPolicy needs 0 < probability_off < probability_on < 1")
        if not 0.0 < self.fraction < 1.0:
            raise ValueError(f"HarvestPolicy.fraction must lie in (0, 1) (got {self.fraction})")


def growth_stopped_probability(growth_rate_per_h: np.ndarray, growth_rate_sd: np.ndarray,
                               threshold_per_h: float) -> np.ndarray:  # fmt: skip
    """p = Φ((θ − μ̂)/σ); NaN where the estimate is NaN."""
    sd = np.maximum(np.asarray(growth_rate_sd, dtype=float), 1e-12)
    return ndtr((threshold_per_h - np.asarray(growth_rate_per_h, dtype=float)) / sd)


def harvest_ready(probability: np.ndarray, biomass_g_per_l: np.ndarray, policy: HarvestPolicy,
                  previous: np.ndarray | None = None) -> np.ndarray:  # fmt: skip
    """Hysteresis over time (last axis), independently per unit (leading axes), from the flags ``previous``
    (leading shape; default off): a live pipeline passes each unit's last flag."""
    probability = np.asarray(probability, dtype=float)
    dense = np.asarray(biomass_g_per_l, dtype=float) >= policy.min_biomass_g_per_l
    with np.errstate(invalid="ignore"):
        return latch((probability >= policy.probability_on) & dense, probability < policy.probability_off, previous)


def hours_until_growth_stops(times_h: np.ndarray, growth_rate_per_h: np.ndarray, threshold_per_h: float,
                             window_h: float = 6.0) -> np.ndarray:  # fmt: skip
    """Causal forecast at each sample (module doc), from the samples in (t − window_h, t]; one unit."""
    t = np.asarray(times_h, dtype=float)
    mu = np.asarray(growth_rate_per_h, dtype=float)
    if t.shape != mu.shape or t.ndim != 1:
        raise ValueError("times_h and growth_rate_per_h must be 1-D and of one length")
    if window_h <= 0:
        raise ValueError(f"window_h must be > 0 (got {window_h})")
    # Running sums over the window give the least-squares slope s = (n Σtμ − Σt Σμ) / (n Σt² − (Σt)²).
    shifted = t - t[0] if t.size else t
    sums = [np.concatenate([[0.0], np.cumsum(v)]) for v in (np.ones_like(t), shifted, mu, shifted * mu, shifted**2)]
    end = np.arange(1, t.size + 1)
    start = np.searchsorted(t, t - window_h, side="right")
    n, st, sm, stm, stt = (c[end] - c[start] for c in sums)
    denominator = n * stt - st**2
    with np.errstate(invalid="ignore", divide="ignore"):
        slope = np.where(denominator > 1e-12, (n * stm - st * sm) / denominator, 0.0)
        hours = np.where(slope < 0.0, (mu - threshold_per_h) / -slope, np.inf)
    return np.where(mu <= threshold_per_h, 0.0, hours)


def recommended_fraction(biomass_g_per_l: np.ndarray, growth_rate_per_h: np.ndarray,
                         max_fraction: float = 0.9) -> np.ndarray:  # fmt: skip
    """Causal f = clip(1 − X*/X, 0, max_fraction), X* the biomass of the highest μ̂ X̂ so far (module doc)."""
    x = np.asarray(biomass_g_per_l, dtype=float)
    productivity = x * np.asarray(growth_rate_per_h, dtype=float)
    productivity = np.where(np.isfinite(productivity), productivity, -np.inf)
    best = np.maximum.accumulate(productivity)
    at_best = np.maximum.accumulate(np.where(productivity >= best, np.arange(x.size), 0))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.clip(1.0 - x[at_best] / x, 0.0, max_fraction)
