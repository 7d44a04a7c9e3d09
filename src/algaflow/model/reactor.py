"""The reactor: two well-mixed compartments in a loop, a dark sparged tank and a lit section.

Compartment 0 is the mixing tank (sparged, dark); compartment 1 the lit section (the tubes of a tubular
loop, or the panel of a flat-panel reactor, where the lit section is also sparged). Per compartment j
with volume V_j and loop flow Q (L/h), for biomass X (g/L), nitrate N (mg/L), DIC and alkalinity A
(mmol/L), dissolved O2 (mg/L):

    μ_j   = μmax ⟨f_light⟩_j f_T(T) f_pH(pH_j) f_O2(O2_j) f_N(N_j) f_C(DIC_j)           (gross, 1/h)
    r     = r20 Q10^((T−20)/10)                                                        (respiration)
    dX_j  = (μ_j − r) X_j                                   + Q/V_j (X_k − X_j)
    dN_j  = −Y_N μ_j X_j                                    + Q/V_j (N_k − N_j)
    dDIC_j= −(μ_j − r) X_j f_C 1000/12.011 + kLa_CO2,j (CO2*_sat − CO2*_j)     + exchange
    dA_j  = +Y_N μ_j X_j / 62.004       (each nitrate taken up leaves one OH⁻)  + exchange
    dO2_j = (μ_j − r) X_j f_C PQ 31.998·1000/12.011 + kLa_O2,j (O2_sat − O2_j)  + exchange
    (the tank's kLa is limited by the gas stream: :func:`tank_transfer_coefficients`)
    dT    = (T_amb − T)/τ_amb + (T_set − T)/τ_ctrl + h_light I0
    dP    = Σ_j (μ_j − r) X_j V_j                          (g of biomass produced, harvested included)

pH_j and CO2*_j follow from (DIC_j, A_j, T, S) through :mod:`algaflow.model.chemistry`.
All routines work on one reactor's state row; batches loop over rows in compiled code.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from algaflow.model.chemistry import equilibrium_constants, solve_hydrogen, species
from algaflow.model.gas import (
    CARBON_MOLAR_MASS_G,
    KLA_CO2_OVER_O2,
    MOLAR_GAS_VOLUME_L,
    NITRATE_MOLAR_MASS_G,
    O2_MOLAR_MASS_G,
    density_kg_per_l,
    gas_limited_kla,
    kla_at_flow,
    oxygen_saturation_mg_per_l,
)
from algaflow.model.kinetics import (
    cardinal_factor,
    monod_factor,
    oxygen_factor,
    respiration_rate,
)
from algaflow.model.optics import geometry_average

# ---- state vector, one row per reactor -------------------------------------------------------------
STATE_NAMES = (
    "biomass_tank_g_per_l", "biomass_lit_g_per_l", "nitrate_tank_mg_per_l", "nitrate_lit_mg_per_l",
    "dic_tank_mmol_per_l", "dic_lit_mmol_per_l", "alkalinity_tank_mmol_per_l", "alkalinity_lit_mmol_per_l",
    "o2_tank_mg_per_l", "o2_lit_mg_per_l", "temperature_c", "biomass_produced_g",
)  # fmt: skip
X_TANK, X_LIT, NO3_TANK, NO3_LIT, DIC_TANK, DIC_LIT, ALK_TANK, ALK_LIT, O2_TANK, O2_LIT, TEMP, PRODUCED = range(12)
N_STATE = 12

# ---- parameter vector, one row per reactor ----------------------------------------------------------
PARAMETER_NAMES = (
    # strain
    "mu_max_per_h", "light_a", "light_b", "light_c", "t_min_c", "t_opt_c", "t_max_c",
    "ph_min", "ph_opt", "ph_max", "do_max_mg_per_l", "do_exponent", "nitrate_k_mg_per_l",
    "nitrate_yield_mg_per_g", "dic_k_mmol_per_l", "extinction_per_g_per_l_per_m", "carbon_fraction",
    "photosynthetic_quotient", "respiration_per_h", "respiration_q10", "salinity",
    # reactor
    "geometry", "light_path_m", "volume_tank_l", "volume_lit_l", "water_flow_l_per_min",
    "air_flow_l_per_min", "air_flow_ref_l_per_min", "kla_tank_ref_per_h", "kla_lit_per_h",
    "co2_gas_ppm", "o2_gas_fraction", "tau_ambient_h", "tau_control_h", "temperature_setpoint_c",
    "heating_c_per_h_per_par", "led_fraction", "degas_flow_factor", "degassing",
)  # fmt: skip
(
    MU_MAX, LIGHT_A, LIGHT_B, LIGHT_C, T_MIN, T_OPT, T_MAX, PH_MIN, PH_OPT, PH_MAX, DO_MAX, DO_EXPONENT,
    K_NITRATE, YIELD_NITRATE, K_DIC, EXTINCTION, CARBON_FRACTION, PQ, RESPIRATION, Q10, SALINITY,
    GEOMETRY, LIGHT_PATH, V_TANK, V_LIT, WATER_FLOW, AIR_FLOW, AIR_FLOW_REF, KLA_TANK_REF, KLA_LIT,
    CO2_GAS_PPM, O2_GAS_FRACTION, TAU_AMBIENT, TAU_CONTROL, T_SETPOINT, HEATING, LED, DEGAS_FACTOR, DEGASSING,
) = range(39)
N_PARAMETERS = 39

# ---- per-compartment rates (rows of the `rates` scratch array) ---------------------------------------
GROSS, NET, PH, CO2_AQ, LIGHT_FACTOR = range(5)
N_RATES = 5

# ---- memo of one evaluation: the costly intermediates a nearby evaluation may reuse ------------------
MEMO_LIGHT, MEMO_HYDROGEN_TANK, MEMO_HYDROGEN_LIT = range(3)  # ⟨f_light⟩ of the lit section, [H⁺]_j
N_MEMO = 3
REUSE_LIGHT, REUSE_CHEMISTRY = 1, 2  # bit flags: take ⟨f_light⟩ / [H⁺] from the memo as they are

O2_PER_CARBON_MG_PER_MMOL = O2_MOLAR_MASS_G  # mg O2 per mmol O2


@njit(cache=True, error_model="numpy")
def effective_air_flow(p: np.ndarray) -> float:
    """Sparger flow (L/min), multiplied while degassing is on."""
    return p[AIR_FLOW] * (p[DEGAS_FACTOR] if p[DEGASSING] > 0.5 else 1.0)


@njit(cache=True, error_model="numpy")
def tank_transfer_coefficients(p: np.ndarray, k0: float, temperature_c: float) -> tuple:
    """Gas-limited (kLa_O2, kLa_CO2) of the sparged tank, 1/h (:func:`algaflow.model.gas.gas_limited_kla`)."""
    air = effective_air_flow(p)
    kla = kla_at_flow(p[KLA_TANK_REF], air, p[AIR_FLOW_REF])
    gas_mmol_per_h = air * 60.0 / MOLAR_GAS_VOLUME_L * 1e3
    henry_co2 = k0 * 1e3 * density_kg_per_l(p[SALINITY])  # mmol/L per mole fraction at 1 atm
    henry_o2 = oxygen_saturation_mg_per_l(temperature_c, p[SALINITY], 1.0) / O2_MOLAR_MASS_G
    return (gas_limited_kla(kla, p[V_TANK], henry_o2, gas_mmol_per_h),
            gas_limited_kla(KLA_CO2_OVER_O2 * kla, p[V_TANK], henry_co2, gas_mmol_per_h))


@njit(cache=True, error_model="numpy")
def compartment_rates(
    y: np.ndarray, p: np.ndarray, par_in: float, rates: np.ndarray, memo: np.ndarray, reuse: int
) -> tuple:
    """Fill rates[j, :] = (gross μ, net μ, pH, CO2* mmol/L, ⟨f_light⟩) and return the constants tuple.

    ``memo`` holds (⟨f_light⟩_lit, [H⁺]_tank, [H⁺]_lit) of a nearby evaluation (zeros: none). Its [H⁺] seed
    the pH solve; with REUSE_LIGHT (REUSE_CHEMISTRY) set they are used as they are, which is exact when
    X_lit and PAR (DIC, alkalinity and temperature) equal the memo's. On return it holds this evaluation's.
    """
    temperature = y[TEMP]
    constants = equilibrium_constants(temperature, p[SALINITY])
    rho = density_kg_per_l(p[SALINITY])
    f_temperature = cardinal_factor(temperature, p[T_MIN], p[T_OPT], p[T_MAX], 2.0)
    respiration = respiration_rate(temperature, p[RESPIRATION], p[Q10])
    for j in range(2):
        biomass = y[X_TANK + j]
        f_light = 0.0
        if j == 1 and par_in > 0.0:
            if reuse & REUSE_LIGHT:
                f_light = memo[MEMO_LIGHT]
            else:
                optical_depth = p[EXTINCTION] * max(biomass, 0.0) * p[LIGHT_PATH]
                f_light = geometry_average(
                    int(p[GEOMETRY]), par_in, optical_depth, p[LIGHT_A], p[LIGHT_B], p[LIGHT_C], False
                )
        if j == 1:
            memo[MEMO_LIGHT] = f_light
        dic = y[DIC_TANK + j]
        if reuse & REUSE_CHEMISTRY:
            hydrogen = memo[MEMO_HYDROGEN_TANK + j]
        else:
            hydrogen = solve_hydrogen(
                y[ALK_TANK + j] * 1e-3 / rho, max(dic, 0.0) * 1e-3 / rho, constants, memo[MEMO_HYDROGEN_TANK + j]
            )
            memo[MEMO_HYDROGEN_TANK + j] = hydrogen
        ph = -math.log10(hydrogen)
        co2_aq, _, _ = species(hydrogen, max(dic, 0.0), constants)
        gross = (
            p[MU_MAX] * f_light * f_temperature
            * cardinal_factor(ph, p[PH_MIN], p[PH_OPT], p[PH_MAX], 1.0)
            * oxygen_factor(y[O2_TANK + j], p[DO_MAX], p[DO_EXPONENT])
            * monod_factor(y[NO3_TANK + j], p[K_NITRATE])
            * monod_factor(dic, p[K_DIC])
        )  # fmt: skip
        rates[j, GROSS] = gross
        rates[j, NET] = gross - respiration
        rates[j, PH] = ph
        rates[j, CO2_AQ] = co2_aq
        rates[j, LIGHT_FACTOR] = f_light
    return constants


@njit(cache=True, error_model="numpy")
def loop_exchange_rates(p: np.ndarray) -> tuple:
    """(Q/V_tank, Q/V_lit), 1/h: the fraction of each compartment's volume the loop pump exchanges per hour."""
    flow_l_per_h = p[WATER_FLOW] * 60.0
    return flow_l_per_h / p[V_TANK], flow_l_per_h / p[V_LIT]


@njit(cache=True, error_model="numpy")
def reactor_rhs(
    y: np.ndarray, p: np.ndarray, par_in: float, ambient_c: float, dydt: np.ndarray, memo: np.ndarray, reuse: int
) -> None:
    """dy/dt of one reactor (see module docstring), given incident PAR and ambient temperature now.

    ``memo`` and ``reuse`` as in :func:`compartment_rates` (``np.zeros(N_MEMO)`` and 0 for a plain call).
    """
    rates = np.empty((2, N_RATES))
    constants = compartment_rates(y, p, par_in, rates, memo, reuse)
    temperature = y[TEMP]
    rho = density_kg_per_l(p[SALINITY])
    o2_saturation = oxygen_saturation_mg_per_l(temperature, p[SALINITY], p[O2_GAS_FRACTION])
    co2_saturation = constants[0] * p[CO2_GAS_PPM] * 1e-6 * 1e3 * rho  # mmol/L
    kla_o2_tank, kla_co2_tank = tank_transfer_coefficients(p, constants[0], temperature)
    kla_o2 = (kla_o2_tank, p[KLA_LIT])
    kla_co2 = (kla_co2_tank, KLA_CO2_OVER_O2 * p[KLA_LIT])
    volumes = (p[V_TANK], p[V_LIT])
    exchanges = loop_exchange_rates(p)
    carbon_per_biomass = p[CARBON_FRACTION] * 1e3 / CARBON_MOLAR_MASS_G  # mmol C per g biomass
    produced = 0.0
    for j in range(2):
        k = 1 - j
        exchange = exchanges[j]
        biomass = y[X_TANK + j]
        growth = rates[j, NET] * biomass  # g/L/h
        uptake = p[YIELD_NITRATE] * rates[j, GROSS] * biomass  # mg nitrate/L/h
        dydt[X_TANK + j] = growth + exchange * (y[X_TANK + k] - biomass)
        dydt[NO3_TANK + j] = -uptake + exchange * (y[NO3_TANK + k] - y[NO3_TANK + j])
        dydt[DIC_TANK + j] = (
            -growth * carbon_per_biomass
            + kla_co2[j] * (co2_saturation - rates[j, CO2_AQ])
            + exchange * (y[DIC_TANK + k] - y[DIC_TANK + j])
        )
        dydt[ALK_TANK + j] = uptake / NITRATE_MOLAR_MASS_G + exchange * (y[ALK_TANK + k] - y[ALK_TANK + j])
        dydt[O2_TANK + j] = (
            growth * carbon_per_biomass * p[PQ] * O2_PER_CARBON_MG_PER_MMOL
            + kla_o2[j] * (o2_saturation - y[O2_TANK + j])
            + exchange * (y[O2_TANK + k] - y[O2_TANK + j])
        )
        produced += growth * volumes[j]
    control = (p[T_SETPOINT] - temperature) / p[TAU_CONTROL] if p[TAU_CONTROL] > 0.0 else 0.0
    dydt[TEMP] = (ambient_c - temperature) / p[TAU_AMBIENT] + control + p[HEATING] * par_in
    dydt[PRODUCED] = produced


@njit(cache=True, error_model="numpy")
def reactor_growth_rate(y: np.ndarray, p: np.ndarray, par_in: float, memo: np.ndarray, reuse: int) -> float:
    """Net specific growth rate of the whole culture, 1/h: Σ_j (μ_j − r) X_j V_j / Σ_j X_j V_j.

    ``memo`` and ``reuse`` as in :func:`compartment_rates`.
    """
    rates = np.empty((2, N_RATES))
    compartment_rates(y, p, par_in, rates, memo, reuse)
    biomass = y[X_TANK] * p[V_TANK] + y[X_LIT] * p[V_LIT]
    if biomass <= 0.0:
        return 0.0
    return (rates[0, NET] * y[X_TANK] * p[V_TANK] + rates[1, NET] * y[X_LIT] * p[V_LIT]) / biomass


# ---- Jacobian ------------------------------------------------------------------------------------------
# Quantities held in both compartments (tank index; the lit index is one more), and what a perturbation
# of that quantity leaves unchanged: biomass leaves the pH, nitrate and O2 leave light and pH, DIC and
# alkalinity leave the light.
_PAIRED_TANK = np.array([X_TANK, NO3_TANK, DIC_TANK, ALK_TANK, O2_TANK])
_PAIRED_REUSE = np.array(
    [REUSE_CHEMISTRY, REUSE_LIGHT | REUSE_CHEMISTRY, REUSE_LIGHT, REUSE_LIGHT, REUSE_LIGHT | REUSE_CHEMISTRY]
)
_RELATIVE_STEP = 1.4901161193847656e-08  # √(machine ε)


@njit(cache=True, error_model="numpy", inline="always")
def difference_step(value: float, absolute_tolerance: float) -> float:
    """Forward-difference step √ε · max(|y|, 10³ atol, 10⁻⁶)."""
    return _RELATIVE_STEP * max(abs(value), absolute_tolerance * 1e3, 1e-6)


@njit(cache=True, error_model="numpy")
def reactor_jacobian(
    y: np.ndarray, p: np.ndarray, par_in: float, ambient_c: float, f0: np.ndarray, memo: np.ndarray,
    atol: np.ndarray, jac: np.ndarray,
) -> None:
    """J = ∂f/∂y (N_STATE × N_STATE) at y, f0 = f(y) with ``memo`` from that evaluation: grouped differences.

    Tank rows see lit states only through the exchange e_t (y_l − y_t) of the same quantity, e_j = Q/V_j,
    and lit rows see tank states only through e_l (y_t − y_l). So a quantity's tank and lit states are
    perturbed together (δ_t, δ_l; Curtis, Powell & Reid 1974) and the known exchange separated:

        J[i,t] = (Δf_i − e_t δ_l [i = t]) / δ_t,   J[i,l] = e_t [i = t]          (tank rows i)
        J[i,l] = (Δf_i − e_l δ_t [i = l]) / δ_l,   J[i,t] = e_l [i = l]          (lit rows i)

    Temperature gets a column of its own; nothing depends on the produced biomass (zero column), and
    dP/dt = V_t dX_t/dt + V_l dX_l/dt (the exchange cancels), so its row is V_t J[X_t,:] + V_l J[X_l,:].
    6 evaluations instead of 12, most of them reusing the light average and [H⁺] of f0.
    """
    n = N_STATE
    probe = np.empty(n)
    f = np.empty(n)
    memo_probe = np.empty(N_MEMO)
    exchange = loop_exchange_rates(p)
    for group in range(_PAIRED_TANK.shape[0]):
        tank = _PAIRED_TANK[group]
        lit = tank + 1
        delta = (difference_step(y[tank], atol[tank]), difference_step(y[lit], atol[lit]))
        for i in range(n):
            probe[i] = y[i]
        probe[tank] += delta[0]
        probe[lit] += delta[1]
        memo_probe[:] = memo
        reactor_rhs(probe, p, par_in, ambient_c, f, memo_probe, _PAIRED_REUSE[group])
        for i in range(O2_LIT + 1):
            j = i % 2  # compartment of row i: 0 tank, 1 lit
            own, other = (tank, lit) if j == 0 else (lit, tank)
            difference = f[i] - f0[i]
            if i == own:
                difference -= exchange[j] * delta[1 - j]
            jac[i, own] = difference / delta[j]
            jac[i, other] = exchange[j] if i == own else 0.0
        jac[TEMP, tank] = 0.0
        jac[TEMP, lit] = 0.0
    for i in range(n):
        probe[i] = y[i]
    delta_temperature = difference_step(y[TEMP], atol[TEMP])
    probe[TEMP] += delta_temperature
    memo_probe[:] = memo
    reactor_rhs(probe, p, par_in, ambient_c, f, memo_probe, REUSE_LIGHT)
    for i in range(n):
        jac[i, TEMP] = (f[i] - f0[i]) / delta_temperature
        jac[i, PRODUCED] = 0.0
    for c in range(n):
        jac[PRODUCED, c] = p[V_TANK] * jac[X_TANK, c] + p[V_LIT] * jac[X_LIT, c]
