"""From a validated scenario to the arrays the compiled integrator runs on (one row per unit)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from algaflow.model import reactor as r
from algaflow.model.gas import AIR_O2_FRACTION, oxygen_saturation
from algaflow.model.optics import GEOMETRIES
from algaflow.sim import integrator as integ
from algaflow.sim.forcing import ambient_table, lamp_table, sun_table
from algaflow.sim.scenario import Scenario
from algaflow.sim.tables import pack_tables

# Absolute tolerances per state (units of STATE_NAMES) and for time.
ABSOLUTE_TOLERANCE = np.array([1e-6, 1e-6, 1e-3, 1e-3, 1e-5, 1e-5, 1e-5, 1e-5, 1e-4, 1e-4, 1e-4, 1e-4, 1e-9])


@dataclass(slots=True)
class Batch:
    """Everything the integrator needs for a batch of units (row i = unit i)."""

    y0: np.ndarray
    params: np.ndarray
    controls: np.ndarray
    event_times: np.ndarray
    event_kinds: np.ndarray
    event_values: np.ndarray
    event_counts: np.ndarray
    tables: tuple[np.ndarray, ...]
    hours: float

    def __len__(self) -> int:
        return self.y0.shape[0]

    def rows(self, start: int, stop: int) -> Batch:
        """Units start..stop-1 as a batch of their own (tables shared)."""
        s = slice(start, stop)
        return Batch(self.y0[s], self.params[s], self.controls[s], self.event_times[s], self.event_kinds[s],
                     self.event_values[s], self.event_counts[s], self.tables, self.hours)  # fmt: skip


def strain_parameters(scenario: Scenario) -> dict[str, float]:
    """The strain block of the parameter row: Strain attributes named as in reactor.PARAMETER_NAMES."""
    strain = scenario.resolved_strain()
    values = {name: float(getattr(strain, name)) for name in r.PARAMETER_NAMES[: r.SALINITY]}
    return values | {"salinity": scenario.salinity}


def reactor_parameters(scenario: Scenario) -> np.ndarray:
    """Parameter row of the scenario's nominal unit (order of reactor.PARAMETER_NAMES)."""
    rs, ts, ls = scenario.reactor, scenario.temperature, scenario.light
    values = strain_parameters(scenario) | {
        "geometry": float(GEOMETRIES[rs.geometry]), "light_path_m": rs.light_path_m,
        "volume_tank_l": rs.volume_tank_l, "volume_lit_l": rs.volume_lit_l,
        "water_flow_l_per_min": rs.water_flow_l_per_min, "air_flow_l_per_min": rs.air_flow_l_per_min,
        "air_flow_ref_l_per_min": rs.air_flow_ref_l_per_min, "kla_tank_ref_per_h": rs.kla_tank_per_h,
        "kla_lit_per_h": rs.kla_lit_per_h, "co2_gas_ppm": rs.co2_gas_ppm, "o2_gas_fraction": rs.o2_gas_fraction,
        "tau_ambient_h": ts.ambient_time_constant_h, "tau_control_h": ts.control_time_constant_h,
        "temperature_setpoint_c": ts.setpoint_c, "heating_c_per_h_per_par": ts.light_heating_c_per_h_per_par,
        "led_fraction": ls.led_percent / 100.0 if ls.source == "lamp" else 1.0,
        "degas_flow_factor": rs.degas_flow_factor, "degassing": 0.0,
    }  # fmt: skip
    return np.array([values[name] for name in r.PARAMETER_NAMES], dtype=float)


def initial_state(scenario: Scenario) -> np.ndarray:
    m, i = scenario.medium, scenario.initial
    o2 = float(oxygen_saturation(i.temperature_c, scenario.salinity, AIR_O2_FRACTION))
    return np.array([
        i.biomass_g_per_l, i.biomass_g_per_l, m.nitrate_mg_per_l, m.nitrate_mg_per_l,
        m.dic_mmol_per_l, m.dic_mmol_per_l, m.alkalinity_mmol_per_l, m.alkalinity_mmol_per_l,
        o2, o2, i.temperature_c, 0.0,
    ])  # fmt: skip


def light_and_ambient_tables(scenario: Scenario) -> list[tuple[np.ndarray, np.ndarray]]:
    hours = scenario.days * 24.0
    ls, ts = scenario.light, scenario.temperature
    if ls.source == "lamp":
        light = lamp_table(ls.par_umol, ls.photoperiod_h, ls.on_hour, hours)
    else:
        light = sun_table(scenario.start, hours, ls.latitude, ls.longitude, ls.altitude_m, ls.transmission)
    ambient = ambient_table(ts.ambient_mean_c, ts.ambient_amplitude_c, ts.ambient_peak_hour, hours)
    return [light, ambient]


def build_batch(scenario: Scenario, units: int | None = None, seed: int | None = None) -> Batch:
    """Arrays for ``units`` units (default: the scenario's), with the scenario's unit-to-unit spread."""
    n = scenario.units if units is None else units
    rng = np.random.default_rng(scenario.seed if seed is None else seed)
    tables = light_and_ambient_tables(scenario)
    params = np.tile(reactor_parameters(scenario), (n, 1))
    y0 = np.tile(initial_state(scenario), (n, 1))
    v = scenario.variation
    y0[:, r.X_TANK] *= np.exp(v.initial_biomass_cv * rng.standard_normal(n))
    y0[:, r.X_LIT] = y0[:, r.X_TANK]
    params[:, r.LED] *= np.exp(v.par_cv * rng.standard_normal(n))
    params[:, r.T_SETPOINT] += v.setpoint_sd_c * rng.standard_normal(n)
    hs, al, m = scenario.harvest, scenario.alarms, scenario.medium
    control = np.zeros(integ.N_CONTROL)
    control[integ.HARVEST_ENABLED] = float(hs.enabled)
    control[integ.HARVEST_THRESHOLD] = hs.growth_threshold_per_day / 24.0
    control[integ.HARVEST_FRACTION] = hs.fraction
    control[integ.HARVEST_MIN_BIOMASS] = hs.min_biomass_g_per_l
    control[integ.HARVEST_REF_PAR] = float(np.max(tables[0][1]))
    control[integ.ALARM_ENABLED] = float(al.enabled)
    control[integ.DO_HIGH] = al.do_high_mg_per_l
    control[integ.DO_LOW] = al.do_low_mg_per_l
    control[integ.FRESH_NITRATE] = m.nitrate_mg_per_l
    control[integ.FRESH_DIC] = m.dic_mmol_per_l
    control[integ.FRESH_ALK] = m.alkalinity_mmol_per_l
    control[integ.LIGHT_TABLE] = 0
    control[integ.AMBIENT_TABLE] = 1
    controls = np.tile(control, (n, 1))
    events = sorted(scenario.events, key=lambda e: e.time_h)
    width = max(1, len(events))
    event_times = np.full((n, width), np.inf)
    event_kinds = np.zeros((n, width), dtype=np.int64)
    event_values = np.zeros((n, width))
    for k, event in enumerate(events):
        event_times[:, k] = event.time_h
        event_kinds[:, k] = integ.EVENT_KINDS.index(event.kind) + 1
        value = event.value / 100.0 if event.kind == "set_led" else event.value
        event_values[:, k] = value
    event_counts = np.full(n, len(events), dtype=np.int64)
    return Batch(y0, params, controls, event_times, event_kinds, event_values, event_counts,
                 pack_tables(tables), scenario.days * 24.0)  # fmt: skip
