"""Quantities derived from a reactor's state that sensors and operators see.

    biomass        X̄ = (X_tank V_tank + X_lit V_lit) / (V_tank + V_lit)                g/L
    growth rate    μ = Σ_j (μ_j − r) X_j V_j / Σ_j X_j V_j                             1/h
    CO2 captured   = biomass produced × f_C × 44.009 / 12.011                           g
    PAR behind     I_back = I0 exp(−k X_lit L)                                          µmol m⁻² s⁻¹
    exhaust CO2    x_out = x_in − N_CO2 / n_gas,  N_CO2 = kLa_CO2 (CO2*_sat − CO2*) V_tank  (ppm)
    exhaust O2     y_out = y_in + N_O2 / n_gas,   N_O2 = kLa_O2 (O2 − O2_sat) V_tank        (%)
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from algaflow.model.chemistry import equilibrium_constants
from algaflow.model.gas import (
    CARBON_MOLAR_MASS_G,
    CO2_MOLAR_MASS_G,
    MOLAR_GAS_VOLUME_L,
    O2_MOLAR_MASS_G,
    density_kg_per_l,
    oxygen_saturation_mg_per_l,
)
from algaflow.model.reactor import (
    CARBON_FRACTION,
    CO2_AQ,
    CO2_GAS_PPM,
    EXTINCTION,
    LIGHT_PATH,
    N_MEMO,
    N_RATES,
    NET,
    O2_GAS_FRACTION,
    O2_TANK,
    PH,
    PRODUCED,
    SALINITY,
    TEMP,
    V_LIT,
    V_TANK,
    X_LIT,
    X_TANK,
    compartment_rates,
    effective_air_flow,
    tank_transfer_coefficients,
)

OBSERVABLE_NAMES = (
    "biomass_g_per_l", "growth_rate_per_h", "co2_captured_g", "ph_tank", "ph_lit", "co2_aq_tank_mg_per_l",
    "par_in", "par_back", "co2_gas_out_ppm", "o2_gas_out_percent", "air_flow_effective_l_per_min",
)  # fmt: skip
N_OBSERVABLES = len(OBSERVABLE_NAMES)


@njit(cache=True, error_model="numpy")
def observe(y: np.ndarray, p: np.ndarray, par_in: float, out: np.ndarray) -> None:
    """Fill ``out`` with the observables (order of OBSERVABLE_NAMES) of one reactor."""
    rates = np.empty((2, N_RATES))
    compartment_rates(y, p, par_in, rates, np.zeros(N_MEMO), 0)
    v_tank, v_lit = p[V_TANK], p[V_LIT]
    mass = y[X_TANK] * v_tank + y[X_LIT] * v_lit
    out[0] = mass / (v_tank + v_lit)
    out[1] = (rates[0, NET] * y[X_TANK] * v_tank + rates[1, NET] * y[X_LIT] * v_lit) / mass if mass > 0 else 0.0
    out[2] = y[PRODUCED] * p[CARBON_FRACTION] * CO2_MOLAR_MASS_G / CARBON_MOLAR_MASS_G
    out[3] = rates[0, PH]
    out[4] = rates[1, PH]
    out[5] = rates[0, CO2_AQ] * CO2_MOLAR_MASS_G  # mmol/L → mg/L
    out[6] = par_in
    out[7] = par_in * math.exp(-p[EXTINCTION] * max(y[X_LIT], 0.0) * p[LIGHT_PATH])
    air = effective_air_flow(p)
    out[10] = air
    if air <= 0.0:
        out[8] = math.nan
        out[9] = math.nan
        return
    gas_mol_per_h = air * 60.0 / MOLAR_GAS_VOLUME_L
    k0 = equilibrium_constants(y[TEMP], p[SALINITY])[0]
    kla_o2, kla_co2 = tank_transfer_coefficients(p, k0, y[TEMP])
    co2_saturation = k0 * p[CO2_GAS_PPM] * 1e-6 * 1e3 * density_kg_per_l(p[SALINITY])  # mmol/L
    co2_into_liquid = kla_co2 * (co2_saturation - rates[0, CO2_AQ]) * v_tank * 1e-3  # mol/h
    out[8] = p[CO2_GAS_PPM] - co2_into_liquid / gas_mol_per_h * 1e6
    o2_saturation = oxygen_saturation_mg_per_l(y[TEMP], p[SALINITY], p[O2_GAS_FRACTION])
    o2_out_of_liquid = kla_o2 * (y[O2_TANK] - o2_saturation) * v_tank * 1e-3 / O2_MOLAR_MASS_G  # mol/h
    out[9] = (p[O2_GAS_FRACTION] + o2_out_of_liquid / gas_mol_per_h) * 100.0


@njit(cache=True, error_model="numpy", parallel=True)
def observe_batch(states: np.ndarray, params: np.ndarray, par_in: np.ndarray, out: np.ndarray) -> None:
    """states (n, N_STATE), params (n, N_PARAMETERS), par_in (n,) → out (n, N_OBSERVABLES)."""
    for i in prange(states.shape[0]):
        observe(states[i], params[i], par_in[i], out[i])
