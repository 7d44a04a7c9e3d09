"""Harvest advisor: is growth over? The probability that the growth rate has fallen below a threshold.

With the estimate μ ~ N(μ̂, σ²) (fusion), the probability that the culture has stopped growing is

    p = P(μ < θ) = Φ((θ − μ̂) / σ)

and the advice switches on with hysteresis: ``ready`` once p ≥ p_on while the biomass is worth
harvesting (X ≥ X_min), and off again only when p < p_off (p_off < p_on), so the flag does not chatter on
a noisy estimate. The recommended fraction leaves the culture at the density where it grows fastest.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import ndtr


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


def harvest_ready(probability: np.ndarray, biomass_g_per_l: np.ndarray, policy: HarvestPolicy) -> np.ndarray:
    """Hysteresis over time (last axis), independently per unit (leading axes)."""
    probability = np.asarray(probability, dtype=float)
    dense = np.asarray(biomass_g_per_l, dtype=float) >= policy.min_biomass_g_per_l
    ready = np.zeros(probability.shape, dtype=bool)
    state = np.zeros(probability.shape[:-1], dtype=bool)
    for k in range(probability.shape[-1]):
        p = probability[..., k]
        state = np.where(state, ~(p < policy.probability_off), (p >= policy.probability_on) & dense[..., k])
        ready[..., k] = state
    return ready
