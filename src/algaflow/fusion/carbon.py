"""CO2 captured from the biomass produced: carbon accounting on the fused biomass, with its uncertainty.

Biomass produced up to time t in a culture of volume V (L), harvests h of fraction f_h at t_h included:

    P(t) = V [X(t) − X(t₀)] + Σ_{t_h ≤ t} V f_h X(t_h⁻)                            (g dry weight)
    CO2(t) = P(t) · c · M_CO2 / M_C                                                 (g CO2)

with c the strain's carbon mass fraction. Its sd treats the biomass estimates at the distinct times as
independent (an upper bound for positively correlated errors of a smoother):

    σ_P² = V² [σ_X(t)² + σ_X(t₀)² + Σ f_h² σ_X(t_h⁻)²]
"""

from __future__ import annotations

import numpy as np

from algaflow.model.gas import CARBON_MOLAR_MASS_G, CO2_MOLAR_MASS_G

CO2_PER_CARBON = CO2_MOLAR_MASS_G / CARBON_MOLAR_MASS_G


def co2_from_biomass(biomass_g_per_l: np.ndarray, biomass_sd: np.ndarray, harvest_fraction: np.ndarray,
                     volume_l: float, carbon_fraction: float) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """Cumulative CO2 captured (g) and its sd along the last axis.

    ``harvest_fraction[..., k]`` is the fraction removed just before sample k (0 where none); the biomass
    just before it is taken from sample k − 1.
    """
    if volume_l <= 0 or not 0 < carbon_fraction < 1:
        raise ValueError("volume_l must be > 0 and carbon_fraction in (0, 1)")
    x = np.asarray(biomass_g_per_l, dtype=float)
    sd = np.asarray(biomass_sd, dtype=float)
    f = np.asarray(harvest_fraction, dtype=float)
    before = np.concatenate([x[..., :1], x[..., :-1]], axis=-1)
    before_sd = np.concatenate([sd[..., :1], sd[..., :-1]], axis=-1)
    harvested = np.cumsum(f * before, axis=-1)
    harvested_variance = np.cumsum((f * before_sd) ** 2, axis=-1)
    return co2_from_totals(x, sd, x[..., :1], sd[..., :1], harvested, harvested_variance, volume_l, carbon_fraction)


def co2_from_totals(biomass_g_per_l: np.ndarray, biomass_sd: np.ndarray, initial_g_per_l: np.ndarray,
                    initial_sd: np.ndarray, harvested_g_per_l: np.ndarray, harvested_variance: np.ndarray,
                    volume_l: float, carbon_fraction: float) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """CO2 (g) and sd from the running totals of the module doc: X(t), X(t₀), Σ f_h X(t_h⁻) and
    Σ f_h² σ_X(t_h⁻)² (a live pipeline keeps these per unit instead of the whole series)."""
    produced = volume_l * (biomass_g_per_l - initial_g_per_l + harvested_g_per_l)
    produced_sd = volume_l * np.sqrt(biomass_sd**2 + initial_sd**2 + harvested_variance)
    scale = carbon_fraction * CO2_PER_CARBON
    return produced * scale, produced_sd * scale
