"""Sensor models: a reading is the true value at the sample time, corrupted as a real probe corrupts it.

    reading = Q( clip( truth(t) + bias + drift·(t − t0) + ε + spike ) ),  ε ~ N(0, σ²)  (σ relative for counts)

(or a heavy-tailed Student-t ε of the same variance, ``noise_student_t_dof``), with the probe's calibration
offset, bias ~ N(0, σ_offset²) (the catalog's ``offset_sd``), drawn once per unit, Q quantisation to the
instrument's resolution and clip to its range (saturation). Samples go
missing at random (dropouts), and scenario faults switch on in a window: extra ``bias``, ``drift`` per
day, ``stuck`` (frozen at the value when the fault began), ``dropout`` (probability), ``spikes``
(probability of bubble spikes), ``offline`` (no readings). Each sensor samples at its own period with a
random phase per unit. Manual ``dry_weight`` samples are taken every ``dry_weight_every_h`` and entered
into the record ``dry_weight_entry_delay_h`` later (logged as ``lab_entry`` events).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from algaflow.catalog import SENSORS, Strain
from algaflow.model import reactor as r
from algaflow.model.observables import OBSERVABLE_NAMES
from algaflow.sim.scenario import FaultSpec, Scenario

# Sensors whose slow drift is typical of the probe (per day, in the sensor's unit): electrode ageing,
# membrane fouling, biofilm on optics. Scenario values override.
DEFAULT_DRIFT_PER_DAY = {"ph_tank": 0.005, "ph_tube": 0.005, "do_tank": 0.03, "do_tube": 0.03,
                         "turbidity_tank": 1.0, "turbidity_tube": 1.0, "dco2_tank": 0.1}  # fmt: skip
MANUAL_SAMPLES = ("dry_weight",)  # measured in the lab from a sample: no probe offset, no drift
# Sensors disturbed by bubbles: spikes of this many noise SDs (sign: +1 up, -1 down).
SPIKE_SIZE = {"do_tank": 8.0, "do_tube": 8.0, "ph_tank": -6.0, "ph_tube": -6.0, "turbidity_tank": 40.0,
              "turbidity_tube": 40.0, "od680": 20.0, "od750": 20.0, "dco2_tank": 6.0}  # fmt: skip
_OBS = {name: k for k, name in enumerate(OBSERVABLE_NAMES)}


@dataclass(slots=True)
class UnitTruth:
    """True trajectory of one unit on the truth grid, as the sensor models need it."""

    times_h: np.ndarray
    states: np.ndarray  # (times, N_STATE)
    observables: np.ndarray  # (times, N_OBSERVABLES)
    dynamic: np.ndarray  # (times, len(DYNAMIC_PARAMETERS)): led, air flow, degassing, setpoint, co2 gas
    ambient_c: np.ndarray
    params: np.ndarray


def true_value(name: str, truth: UnitTruth, strain: Strain) -> np.ndarray:
    """The quantity sensor ``name`` measures, on the truth grid."""
    s, o, p = truth.states, truth.observables, truth.params
    biomass_tank, biomass_lit = s[:, r.X_TANK], s[:, r.X_LIT]
    table = {
        "temp_tank": lambda: s[:, r.TEMP],
        "temp_tube": lambda: s[:, r.TEMP],
        "ph_tank": lambda: o[:, _OBS["ph_tank"]],
        "ph_tube": lambda: o[:, _OBS["ph_lit"]],
        "do_tank": lambda: s[:, r.O2_TANK],
        "do_tube": lambda: s[:, r.O2_LIT],
        "dco2_tank": lambda: o[:, _OBS["co2_aq_tank_mg_per_l"]],
        "od750": lambda: biomass_tank * strain.od750_per_g_per_l,
        "od680": lambda: biomass_tank * strain.od750_per_g_per_l * strain.od680_over_od750,
        "turbidity_tank": lambda: biomass_tank * strain.turbidity_ntu_per_g_per_l,
        "turbidity_tube": lambda: biomass_lit * strain.turbidity_ntu_per_g_per_l,
        "par_surface": lambda: o[:, _OBS["par_in"]],
        "par_back": lambda: o[:, _OBS["par_back"]],
        "led_power": lambda: truth.dynamic[:, 0] * 100.0,
        "co2_gas_in": lambda: truth.dynamic[:, 4],
        "co2_gas_out": lambda: o[:, _OBS["co2_gas_out_ppm"]],
        "o2_gas_out": lambda: o[:, _OBS["o2_gas_out_percent"]],
        "air_flow": lambda: o[:, _OBS["air_flow_effective_l_per_min"]],
        "water_flow": lambda: np.full(len(s), p[r.WATER_FLOW]),
        "level": lambda: np.full(len(s), p[r.V_TANK]),
        "nitrate": lambda: s[:, r.NO3_TANK],
        "temp_ambient": lambda: truth.ambient_c,
        "dry_weight": lambda: biomass_tank,
        "cell_count": lambda: biomass_tank * strain.cells_per_ml_per_g_per_l,
    }
    return table[name]()


def _interpolate(times_h: np.ndarray, grid_h: np.ndarray, values: np.ndarray, step_like: bool) -> np.ndarray:
    if step_like:  # piecewise-constant quantities (setpoints, flows): last value at or before t
        index = np.clip(np.searchsorted(grid_h, times_h, side="right") - 1, 0, len(grid_h) - 1)
        return values[index]
    return np.interp(times_h, grid_h, values)


_STEP_LIKE = {"led_power", "co2_gas_in", "air_flow", "water_flow", "level"}


def read_sensor(
    name: str, truth: UnitTruth, strain: Strain, scenario: Scenario, unit: int, rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """Sample times (h) and readings of one sensor of one unit (NaN-free: missing samples are dropped)."""
    spec = SENSORS[name]
    hours = truth.times_h[-1]
    cfg = scenario.sensors
    if name == "dry_weight":
        times = np.arange(cfg.dry_weight_every_h, hours + 1e-9, cfg.dry_weight_every_h)
    else:
        period_h = cfg.period_s.get(name, spec.period_s) / 3600.0
        times = np.arange(rng.uniform(0.0, period_h), hours, period_h)
    if times.size == 0:
        return times, times
    truth_values = true_value(name, truth, strain)
    values = _interpolate(times, truth.times_h, truth_values, name in _STEP_LIKE)
    sd = spec.noise_sd * (np.abs(values) if spec.relative_noise else 1.0)
    reading = values + sd * _unit_noise(rng, times.size, cfg.noise_student_t_dof)
    # Calibration offset of this unit's probe (the catalog's offset sd) and slow drift; a manual sample has no
    # probe (the draws are made all the same, so the other sensors' readings do not depend on it).
    probe = name not in MANUAL_SAMPLES
    if spec.noise_sd > 0 and not spec.relative_noise and name not in _STEP_LIKE:
        offset = spec.offset_sd * rng.standard_normal()
        reading += offset if probe else 0.0
    drift = cfg.drift_per_day.get(name, DEFAULT_DRIFT_PER_DAY.get(name, 0.0))
    slope = drift * rng.uniform(-1.0, 1.0)
    reading += slope * times / 24.0 if probe else 0.0
    keep = rng.random(times.size) >= cfg.dropout_probability
    if name in SPIKE_SIZE:
        spikes = rng.random(times.size) < cfg.spike_probability
        reading[spikes] += SPIKE_SIZE[name] * spec.noise_sd * rng.uniform(0.5, 1.5, spikes.sum())
    for fault in scenario.faults:
        if fault.sensor == name and (fault.units is None or unit in fault.units):
            keep &= _apply_fault(fault, times, reading, spec.noise_sd, rng)
    reading = np.clip(reading, *spec.range)
    if spec.resolution > 0:
        reading = np.round(reading / spec.resolution) * spec.resolution
    return times[keep], reading[keep]


def _unit_noise(rng: np.random.Generator, size: int, dof: float | None) -> np.ndarray:
    """Zero-mean, unit-variance noise: Gaussian, or Student-t(ν) scaled by √((ν − 2)/ν) (heavy tails)."""
    if dof is None:
        return rng.standard_normal(size)
    return rng.standard_t(dof, size) * np.sqrt((dof - 2.0) / dof)


def _apply_fault(fault: FaultSpec, times: np.ndarray, reading: np.ndarray, noise_sd: float,
                 rng: np.random.Generator) -> np.ndarray:  # fmt: skip
    """Corrupt ``reading`` in place inside the fault window; returns the mask of samples kept."""
    window = (times >= fault.start_h) & (times < fault.end_h)
    keep = np.ones(times.size, dtype=bool)
    if not window.any():
        return keep
    if fault.kind == "bias":
        reading[window] += fault.magnitude
    elif fault.kind == "drift":
        reading[window] += fault.magnitude * (times[window] - fault.start_h) / 24.0
    elif fault.kind == "stuck":
        first = np.flatnonzero(window)[0]
        reading[window] = reading[first]
    elif fault.kind == "dropout":
        keep[window] = rng.random(window.sum()) >= (fault.magnitude or 0.5)
    elif fault.kind == "spikes":
        spikes = window & (rng.random(times.size) < (fault.magnitude or 0.05))
        reading[spikes] += 10.0 * max(noise_sd, 1e-3) * rng.choice([-1.0, 1.0], spikes.sum())
    elif fault.kind == "offline":
        keep[window] = False
    return keep
