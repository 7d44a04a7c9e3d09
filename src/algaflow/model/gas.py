"""Gas exchange: solubility of O2 and CO2, and kLa transfer between sparged gas and culture.

    dC/dt = kLa (C* − C)        C* = equilibrium with the gas (Henry's law)

* O2 saturation: Garcia & Gordon (1992) Limnol. Oceanogr. 37:1307, Benson–Krause fit (µmol/kg, water-
  saturated air at 1 atm), scaled by the O2 mole fraction of the gas.
* CO2 saturation: C* = K0 · x_CO2 · 1 atm with K0 of Weiss (1974) (:mod:`algaflow.model.chemistry`);
  the water-vapour share of the gas is neglected (≤ 7 % at 40 °C, inside the kLa uncertainty).
* kLa_CO2 = kLa_O2 √(D_CO2 / D_O2) (penetration theory, Higbie 1935), D at 25 °C from the CRC Handbook.
* kLa grows with gas flow as (Q / Q_ref)^0.7, the exponent of Heijnen & van 't Riet (1984) for bubble columns.
* The gas in the sparged tank is well mixed and leaves at the exhaust composition x_out, so the gas
  stream limits transfer: with C* = H x and ṅ the molar gas flow, N = kLa V (H x_in − C) / (1 + kLa V H / ṅ)
  and x_out = x_in − N / ṅ, i.e. an effective kLa_eff = kLa / (1 + kLa V H / ṅ).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, vectorize

O2_MOLAR_MASS_G = 31.998
CO2_MOLAR_MASS_G = 44.009
CARBON_MOLAR_MASS_G = 12.011
NITRATE_MOLAR_MASS_G = 62.004
AIR_O2_FRACTION = 0.20946
MOLAR_GAS_VOLUME_L = 24.465  # L/mol, ideal gas at 25 °C and 1 atm
KLA_CO2_OVER_O2 = math.sqrt(1.91 / 2.10)
KLA_FLOW_EXPONENT = 0.7


@njit(cache=True, error_model="numpy", inline="always")
def density_kg_per_l(salinity: float) -> float:
    """Medium density, kg/L: 1 + 0.0007 S (within 0.3 % of TEOS-10 for 10–35 °C, S 0–40)."""
    return 1.0 + 0.0007 * salinity


@njit(cache=True, error_model="numpy")
def oxygen_saturation_mg_per_l(temperature_c: float, salinity: float, o2_fraction: float) -> float:
    """Equilibrium dissolved O2 (mg/L) with a gas of O2 mole fraction ``o2_fraction`` at 1 atm."""
    ts = math.log((298.15 - temperature_c) / (273.15 + temperature_c))
    ln_c = (
        5.80871 + ts * (3.20291 + ts * (4.17887 + ts * (5.10006 + ts * (-9.86643e-2 + ts * 3.80369))))
        + salinity * (-7.01577e-3 + ts * (-7.70028e-3 + ts * (-1.13864e-2 + ts * -9.51519e-3)))
        - 2.75915e-7 * salinity * salinity
    )  # fmt: skip
    umol_per_kg = math.exp(ln_c) * o2_fraction / AIR_O2_FRACTION
    return umol_per_kg * O2_MOLAR_MASS_G * 1e-3 * density_kg_per_l(salinity)


@njit(cache=True, error_model="numpy", inline="always")
def kla_at_flow(kla_ref_per_h: float, flow_l_per_min: float, flow_ref_l_per_min: float) -> float:
    """kLa (1/h) at a gas flow, from its value at a reference flow: kLa_ref (Q / Q_ref)^0.7."""
    if flow_l_per_min <= 0.0 or flow_ref_l_per_min <= 0.0:
        return 0.0
    return kla_ref_per_h * (flow_l_per_min / flow_ref_l_per_min) ** KLA_FLOW_EXPONENT


@njit(cache=True, error_model="numpy", inline="always")
def gas_limited_kla(kla_per_h: float, volume_l: float, henry_mmol_per_l: float, gas_mmol_per_h: float) -> float:
    """kLa_eff = kLa / (1 + kLa V H / ṅ): transfer limited by what the gas stream carries (H per mole fraction)."""
    if gas_mmol_per_h <= 0.0:
        return 0.0
    return kla_per_h / (1.0 + kla_per_h * volume_l * henry_mmol_per_l / gas_mmol_per_h)


oxygen_saturation = vectorize(["float64(float64, float64, float64)"], cache=True)(
    oxygen_saturation_mg_per_l.py_func
)


def gas_molar_flow_mol_per_h(flow_l_per_min: np.ndarray | float) -> np.ndarray:
    """Molar flow of a gas stream (mol/h) from its volumetric flow at 25 °C, 1 atm."""
    return np.asarray(flow_l_per_min, dtype=float) * 60.0 / MOLAR_GAS_VOLUME_L
