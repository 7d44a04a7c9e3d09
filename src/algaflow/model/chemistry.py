"""Carbonate chemistry of the medium, fresh water (S = 0) to seawater (S ≤ 40), on the total pH scale.

Equilibria (all stoichiometric, mol/kg-solution, at 1 atm):

* K1, K2 of carbonic acid: Millero (2010) Mar. Freshw. Res. 61:139, seawater scale, valid S 0–50, T 0–50 °C;
  at S = 0 it reduces to the pure-water constants of Millero (1979).
* K0 (CO2 solubility): Weiss (1974) Mar. Chem. 2:203.   KB (boric acid): Dickson (1990) Deep-Sea Res. 37:755.
* Kw: Millero (1995) GCA 59:661.   KS (HSO4⁻): Dickson (1990) J. Chem. Thermodyn. 22:113.
* KF (HF): Dickson & Riley (1979) Mar. Chem. 7:89.   Fugacity factor: Weiss (1974), virial coefficients.
* Totals scale with salinity: borate Uppström (1974), sulfate Morris & Riley (1966), fluoride Riley (1965).

Seawater-scale constants are put on the total scale with  K_T = K_SWS (1 + S_T/K_S) / (1 + S_T/K_S + F_T/K_F).

Species from [H⁺] (total scale, h) and DIC:
    CO2* = DIC h² / (h² + K1 h + K1 K2),  HCO3⁻ = DIC K1 h / (...),  CO3²⁻ = DIC K1 K2 / (...)
Total alkalinity:
    TA = HCO3⁻ + 2 CO3²⁻ + B(OH)4⁻ + OH⁻ − H_free − HSO4⁻ − HF
    pCO2 = fCO2 / fugacity_factor,  fCO2 = CO2* / K0.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from numba import njit

KELVIN = 273.15
GAS_CONSTANT_CM3_ATM = 82.05736  # cm³ atm mol⁻¹ K⁻¹


class EquilibriumConstants(NamedTuple):
    """Constants at one temperature and salinity (mol/kg-solution, total pH scale)."""

    k0: float  # mol kg⁻¹ atm⁻¹
    k1: float
    k2: float
    kb: float
    kw: float
    ks: float  # free scale
    kf: float  # free scale
    total_borate: float
    total_sulfate: float
    total_fluoride: float
    fugacity_factor: float


@njit(cache=True, error_model="numpy")
def equilibrium_constants(temperature_c: float, salinity: float) -> tuple:
    """All constants as a tuple in the field order of :class:`EquilibriumConstants`."""
    tk = temperature_c + KELVIN
    s = salinity
    sqrt_s = math.sqrt(s)
    ln_tk = math.log(tk)
    # Weiss (1974): ln K0 in mol kg⁻¹ atm⁻¹.
    tk100 = tk / 100.0
    k0 = math.exp(
        -60.2409 + 93.4517 / tk100 + 23.3585 * math.log(tk100)
        + s * (0.023517 - 0.023656 * tk100 + 0.0047036 * tk100 * tk100)
    )  # fmt: skip
    # Millero (2010), seawater scale: pK = pK0 + A + B/T + C ln T.
    pk1_0 = -126.34048 + 6320.813 / tk + 19.568224 * ln_tk
    a1 = 13.4038 * sqrt_s + 0.03206 * s - 5.242e-5 * s * s
    b1 = -530.659 * sqrt_s - 5.8210 * s
    c1 = -2.0664 * sqrt_s
    k1_sws = 10.0 ** -(pk1_0 + a1 + b1 / tk + c1 * ln_tk)
    pk2_0 = -90.18333 + 5143.692 / tk + 14.613358 * ln_tk
    a2 = 21.3728 * sqrt_s + 0.1218 * s - 3.688e-4 * s * s
    b2 = -788.289 * sqrt_s - 19.189 * s
    c2 = -3.374 * sqrt_s
    k2_sws = 10.0 ** -(pk2_0 + a2 + b2 / tk + c2 * ln_tk)
    # Dickson (1990), total scale.
    ln_kb = (
        (-8966.9 - 2890.53 * sqrt_s - 77.942 * s + 1.728 * sqrt_s * s - 0.0996 * s * s) / tk
        + 148.0248 + 137.1942 * sqrt_s + 1.62142 * s
        + (-24.4344 - 25.085 * sqrt_s - 0.2474 * s) * ln_tk
        + 0.053105 * sqrt_s * tk
    )  # fmt: skip
    kb = math.exp(ln_kb)
    # Millero (1995), seawater scale.
    kw_sws = math.exp(
        148.9802 - 13847.26 / tk - 23.6521 * ln_tk
        + (-5.977 + 118.67 / tk + 1.0495 * ln_tk) * sqrt_s - 0.01615 * s
    )  # fmt: skip
    # Ionic strength (DOE 1994) and the sulfate/fluoride constants on the free scale.
    ionic = 19.924 * s / (1000.0 - 1.005 * s)
    sqrt_i = math.sqrt(ionic)
    ln_ks = (
        -4276.1 / tk + 141.328 - 23.093 * ln_tk
        + (-13856.0 / tk + 324.57 - 47.986 * ln_tk) * sqrt_i
        + (35474.0 / tk - 771.54 + 114.723 * ln_tk) * ionic
        - 2698.0 / tk * sqrt_i * ionic + 1776.0 / tk * ionic * ionic
    )  # fmt: skip
    ks = math.exp(ln_ks) * (1.0 - 0.001005 * s)
    kf = math.exp(1590.2 / tk - 12.641 + 1.525 * sqrt_i) * (1.0 - 0.001005 * s)
    total_borate = 0.0004157 * s / 35.0
    total_sulfate = (0.14 / 96.062) * (s / 1.80655)
    total_fluoride = (0.000067 / 18.998) * (s / 1.80655)
    # Seawater scale → total scale.
    sws_to_total = (1.0 + total_sulfate / ks) / (1.0 + total_sulfate / ks + total_fluoride / kf)
    k1 = k1_sws * sws_to_total
    k2 = k2_sws * sws_to_total
    kw = kw_sws * sws_to_total
    # Weiss (1974) fugacity factor at 1 atm: exp((B + 2 δ) P / (R T)), B and δ in cm³/mol.
    virial_b = -1636.75 + 12.0408 * tk - 0.0327957 * tk * tk + 3.16528e-5 * tk * tk * tk
    delta = 57.7 - 0.118 * tk
    fugacity_factor = math.exp((virial_b + 2.0 * delta) / (GAS_CONSTANT_CM3_ATM * tk))
    return (k0, k1, k2, kb, kw, ks, kf, total_borate, total_sulfate, total_fluoride, fugacity_factor)


@njit(cache=True, error_model="numpy")
def alkalinity_and_slope(h: float, dic: float, c: tuple) -> tuple:
    """TA (mol/kg) at [H⁺]_total = h and DIC, and d TA / d ln h (for Newton's method)."""
    k1, k2, kb, kw, ks, kf = c[1], c[2], c[3], c[4], c[5], c[6]
    tb, ts, tf = c[7], c[8], c[9]
    h_free = h / (1.0 + ts / ks)
    denominator = h * h + k1 * h + k1 * k2
    carbonate_alk = dic * (k1 * h + 2.0 * k1 * k2) / denominator
    borate = tb * kb / (kb + h)
    hydroxide = kw / h
    bisulfate = ts / (1.0 + ks / h_free)
    hydrofluoric = tf / (1.0 + kf / h_free)
    ta = carbonate_alk + borate + hydroxide - h_free - bisulfate - hydrofluoric
    # h d/dh of each term.
    d_carb = dic * (k1 * h * denominator - (k1 * h + 2.0 * k1 * k2) * (2.0 * h * h + k1 * h)) / denominator**2
    d_borate = -tb * kb * h / (kb + h) ** 2
    d_hydroxide = -kw / h
    d_hfree = -h_free
    d_bisulfate = -ts * ks / h_free / (1.0 + ks / h_free) ** 2
    d_hf = -tf * kf / h_free / (1.0 + kf / h_free) ** 2
    slope = d_carb + d_borate + d_hydroxide + d_hfree + d_bisulfate + d_hf
    return ta, slope


@njit(cache=True, error_model="numpy")
def solve_hydrogen(alkalinity: float, dic: float, c: tuple, h_guess: float) -> float:
    """[H⁺]_total (mol/kg) such that TA(h, DIC) = alkalinity: safeguarded Newton in ln h.

    TA decreases monotonically with h, so the root is kept bracketed in pH 0–14.
    """
    ln_lo, ln_hi = math.log(1e-14), math.log(1.0)
    ln_h = math.log(h_guess) if h_guess > 0.0 else math.log(1e-8)
    for _ in range(100):
        ta, slope = alkalinity_and_slope(math.exp(ln_h), dic, c)
        residual = ta - alkalinity
        if residual > 0.0:  # too alkaline: h must rise
            ln_lo = ln_h
        else:
            ln_hi = ln_h
        step = -residual / slope if slope < 0.0 else 0.0
        new = ln_h + step
        if not (ln_lo < new < ln_hi) or step == 0.0:
            new = 0.5 * (ln_lo + ln_hi)
        if abs(new - ln_h) < 1e-12:
            return math.exp(new)
        ln_h = new
    return math.exp(ln_h)


@njit(cache=True, error_model="numpy")
def species(h: float, dic: float, c: tuple) -> tuple:
    """(CO2*, HCO3⁻, CO3²⁻) in the units of ``dic``."""
    k1, k2 = c[1], c[2]
    denominator = h * h + k1 * h + k1 * k2
    return dic * h * h / denominator, dic * k1 * h / denominator, dic * k1 * k2 / denominator


@njit(cache=True, error_model="numpy")
def _carbonate_batch(ph, temperature_c, salinity, alkalinity, dic, out):
    """Fill out[:, i] = (ph, ta, dic, co2, hco3, co3, pco2, fco2); inputs in µmol/kg, NaN = not given."""
    for i in range(ph.shape[0]):
        c = equilibrium_constants(temperature_c[i], salinity[i])
        ta_mol = alkalinity[i] * 1e-6
        dic_mol = dic[i] * 1e-6
        if math.isnan(ph[i]):
            h = solve_hydrogen(ta_mol, dic_mol, c, 1e-8)
        else:
            h = 10.0 ** -ph[i]
            if math.isnan(dic_mol):
                # TA is linear in DIC at fixed h: DIC = (TA − non-carbonate TA) / (carbonate TA per unit DIC).
                ta_zero, _ = alkalinity_and_slope(h, 0.0, c)
                ta_one, _ = alkalinity_and_slope(h, 1.0, c)
                dic_mol = (ta_mol - ta_zero) / (ta_one - ta_zero)
                if dic_mol < 0.0:  # pH impossibly high for this alkalinity
                    dic_mol = math.nan
        if math.isnan(ta_mol):
            ta_mol, _ = alkalinity_and_slope(h, dic_mol, c)
        co2, hco3, co3 = species(h, dic_mol, c)
        fco2 = co2 / c[0]
        out[0, i] = -math.log10(h)
        out[1, i] = ta_mol * 1e6
        out[2, i] = dic_mol * 1e6
        out[3, i] = co2 * 1e6
        out[4, i] = hco3 * 1e6
        out[5, i] = co3 * 1e6
        out[6, i] = fco2 / c[10] * 1e6
        out[7, i] = fco2 * 1e6


class CarbonateSystem(NamedTuple):
    """Carbonate system (arrays): concentrations in µmol/kg, pCO2 and fCO2 in µatm, pH total scale."""

    ph: np.ndarray
    alkalinity: np.ndarray
    dic: np.ndarray
    co2: np.ndarray
    hco3: np.ndarray
    co3: np.ndarray
    pco2: np.ndarray
    fco2: np.ndarray


def carbonate_system(
    *,
    ph: float | np.ndarray | None = None,
    temperature_c: float | np.ndarray,
    salinity: float | np.ndarray = 0.0,
    alkalinity_umol_per_kg: float | np.ndarray | None = None,
    dic_umol_per_kg: float | np.ndarray | None = None,
) -> CarbonateSystem:
    """Solve the carbonate system from two of (pH, total alkalinity, DIC), batch-wise (arrays broadcast).

    Returns CO2(aq) (= CO2*), HCO3⁻, CO3²⁻, DIC, TA in µmol/kg and pCO2, fCO2 in µatm (see module doc).
    Valid for 0 ≤ S ≤ 40 and 0–50 °C (Millero 2010); outside that a ``ValueError`` is raised.
    A pH too high for the given alkalinity (it would need negative DIC) gives NaN in that element.
    """
    given = sum(x is not None for x in (ph, alkalinity_umol_per_kg, dic_umol_per_kg))
    if given != 2:
        raise ValueError("give exactly two of ph, alkalinity_umol_per_kg, dic_umol_per_kg")
    nan = np.nan
    arrays = np.broadcast_arrays(
        np.asarray(nan if ph is None else ph, dtype=float),
        np.asarray(temperature_c, dtype=float),
        np.asarray(salinity, dtype=float),
        np.asarray(nan if alkalinity_umol_per_kg is None else alkalinity_umol_per_kg, dtype=float),
        np.asarray(nan if dic_umol_per_kg is None else dic_umol_per_kg, dtype=float),
    )
    shape = arrays[0].shape
    flat = [np.ascontiguousarray(a.ravel()) for a in arrays]
    if np.any((flat[2] < 0) | (flat[2] > 40)):
        raise ValueError("salinity must be within 0–40 g/kg")
    if np.any((flat[1] < 0) | (flat[1] > 50)):
        raise ValueError("temperature_c must be within 0–50 °C (Millero 2010)")
    if ph is not None and np.any((flat[0] < 2) | (flat[0] > 13)):
        raise ValueError("ph must be within 2–13")
    out = np.empty((8, flat[0].size))
    _carbonate_batch(*flat, out)
    return CarbonateSystem(*(row.reshape(shape) for row in out))
