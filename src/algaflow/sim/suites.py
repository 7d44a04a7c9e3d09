"""Test suites of simulated cultures: growth profiles × sensor noise families, with the truth beside them.

Every case is a run of the reactor simulator (the lab tubular loop, Chlorella vulgaris) whose light,
temperature, nutrients or harvests are scripted to give one shape of the growth-rate curve μ(t), then
read through the sensor models under one noise family. The estimators are judged on these against the
simulator's truth: the culture's net specific growth rate (1/h) and mean biomass (g/L).

Profiles (``PROFILES``): constant, logistic, step up, step down, ramp, day/night, lag–exponential–
stationary, decline, harvests, temperature steps, outdoor sun. Noise families (``NOISE_FAMILIES``):

- ``gaussian``: the catalog noise, no spikes, no dropouts, no drift;
- ``heavy_tailed_bubbles``: Student-t (ν = 3) noise of the same variance and bubble spikes on 2 % of samples;
- ``drift_dropouts_gaps``: the probe drifts (up to 3 noise sd per day: 0.015 AU/day for OD), 20 % of
  samples are lost at random and the sensor is offline for a 2 h and a 20 min gap.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from importlib.resources import files

import numpy as np

from algaflow.catalog import SENSORS, Strain
from algaflow.sim import integrator as integ
from algaflow.sim.build import build_batch
from algaflow.sim.run import integrate
from algaflow.sim.scenario import Scenario, parse_scenario
from algaflow.sim.sensors import UnitTruth, read_sensor
from algaflow.sim.simulate import observables_for

NOISE_FAMILIES = ("gaussian", "heavy_tailed_bubbles", "drift_dropouts_gaps")


def _led_events(times_h: np.ndarray, percents: np.ndarray) -> list[dict]:
    return [{"time_h": float(t), "kind": "set_led", "value": float(v)} for t, v in zip(times_h, percents,
                                                                                              strict=True)]


def _continuous(led_percent: float = 100.0, par_umol: float = 800.0) -> dict:
    return {"source": "lamp", "par_umol": par_umol, "photoperiod_h": 24.0, "led_percent": led_percent}


# name → scenario changes on the lab loop (no automatic harvest unless said; days default 3).
PROFILES: dict[str, dict] = {
    "constant": {"light": _continuous(par_umol=250.0), "initial": {"biomass_g_per_l": 0.02}},
    "logistic": {"light": _continuous(), "initial": {"biomass_g_per_l": 0.3}, "days": 4.0},
    "step_up": {"light": _continuous(led_percent=1.0), "events": _led_events(np.array([30.0]), np.array([100.0]))},
    "step_down": {"light": _continuous(), "initial": {"biomass_g_per_l": 0.1},
                  "events": _led_events(np.array([30.0]), np.array([1.0]))},
    "ramp": {"light": _continuous(led_percent=0.5), "initial": {"biomass_g_per_l": 0.1},
             "events": _led_events(np.arange(12.0, 60.0, 0.5), np.linspace(0.5, 12.0, 96))},
    "day_night": {"light": {"source": "lamp", "par_umol": 800.0, "photoperiod_h": 16.0, "on_hour": 6.0}},
    "lag_exponential_stationary": {
        "light": _continuous(), "initial": {"biomass_g_per_l": 0.05, "temperature_c": 12.0},
        "temperature": {"setpoint_c": 12.0}, "medium": {"nitrate_mg_per_l": 120.0}, "days": 4.0,
        "events": [{"time_h": 10.0, "kind": "set_temperature", "value": 28.0}]},
    "decline": {"light": _continuous(), "initial": {"biomass_g_per_l": 0.5},
                "events": _led_events(np.array([24.0]), np.array([0.0]))},
    "harvests": {"light": _continuous(), "initial": {"biomass_g_per_l": 0.4},
                 "events": [{"time_h": t, "kind": "harvest", "value": f}
                            for t, f in ((18.0, 0.5), (36.0, 0.7), (54.0, 0.3), (63.0, 0.6))]},
    "temperature_steps": {"light": _continuous(), "initial": {"biomass_g_per_l": 0.15},
                          "events": [{"time_h": 24.0, "kind": "set_temperature", "value": 16.0},
                                     {"time_h": 48.0, "kind": "set_temperature", "value": 30.0}]},
    "outdoor_sun": {"light": {"source": "sun", "latitude": 36.8, "longitude": -2.4, "transmission": 0.8}},
}


def _noise_section(family: str, sensors: tuple[str, ...]) -> tuple[dict, list[dict]]:
    """SensorsSection fields and fault specs of a noise family."""
    if family == "gaussian":
        return {"dropout_probability": 0.0, "spike_probability": 0.0,
                "drift_per_day": {s: 0.0 for s in sensors}}, []
    if family == "heavy_tailed_bubbles":
        return {"dropout_probability": 0.0, "spike_probability": 0.02, "noise_student_t_dof": 3.0,
                "drift_per_day": {s: 0.0 for s in sensors}}, []
    if family == "drift_dropouts_gaps":
        drift = {s: 3.0 * SENSORS[s].noise_sd for s in sensors if not SENSORS[s].relative_noise}
        gaps = [{"sensor": s, "kind": "offline", "start_h": start, "end_h": start + length}
                for s in sensors for start, length in ((20.0, 2.0), (44.0, 1.0 / 3.0))]
        return {"dropout_probability": 0.2, "spike_probability": 0.0, "drift_per_day": drift}, gaps
    raise ValueError(f"unknown noise family {family!r}; choose one of {', '.join(NOISE_FAMILIES)}")


def profile_scenario(profile: str, family: str = "gaussian", *, sensors: tuple[str, ...] = ("od750",),
                     period_s: float | dict[str, float] = 60.0, units: int = 1, seed: int = 0) -> Scenario:  # fmt: skip
    """The lab loop scripted to ``profile``, read by ``sensors`` every ``period_s`` (seconds, one for all or
    per sensor) under ``family`` noise."""
    if profile not in PROFILES:
        raise ValueError(f"unknown growth profile {profile!r}; choose one of {', '.join(PROFILES)}")
    base = tomllib.loads(files("algaflow.scenarios").joinpath("lab_tubular_chlorella.toml").read_text())
    base.pop("events", None)
    base |= {"days": 3.0, "units": units, "seed": seed, "truth_every_min": 1.0, "harvest": {"enabled": False}}
    for key, value in PROFILES[profile].items():
        base[key] = base.get(key, {}) | value if isinstance(value, dict) else value
    section, faults = _noise_section(family, sensors)
    periods = period_s if isinstance(period_s, dict) else {s: period_s for s in sensors}
    base["sensors"] = {"include": list(sensors), "period_s": periods} | section
    base["faults"] = faults
    return parse_scenario(base, source=f"profile {profile}/{family}")


@dataclass(slots=True)
class SuiteCase:
    """One simulated unit: truth on a 1-min grid, known harvests, and each sensor's (times_h, values)."""

    profile: str
    family: str
    unit: int
    strain: Strain
    times_h: np.ndarray
    biomass_g_per_l: np.ndarray
    growth_rate_per_h: np.ndarray
    co2_captured_g: np.ndarray
    harvest_times_h: np.ndarray
    harvest_fractions: np.ndarray
    readings: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)

    def truth_at(self, times_h: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(biomass, growth rate) at ``times_h``; biomass is read just after any harvest at that instant."""
        return (np.interp(times_h, self.times_h, self.biomass_g_per_l),
                np.interp(times_h, self.times_h, self.growth_rate_per_h))


def simulate_cases(profile: str, family: str = "gaussian", *, sensors: tuple[str, ...] = ("od750",),
                   period_s: float | dict[str, float] = 60.0, units: int = 1,
                   seed: int = 0) -> list[SuiteCase]:  # fmt: skip
    """Run ``profile`` for ``units`` units (the scenario's unit-to-unit variation applies) and read them."""
    scenario = profile_scenario(profile, family, sensors=sensors, period_s=period_s, units=units, seed=seed)
    batch = build_batch(scenario)
    grid = np.arange(0.0, batch.hours + 1e-9, scenario.truth_every_min / 60.0)
    result = integrate(batch, grid, rtol=1e-6)
    observables, ambient = observables_for(batch, result)
    strain = scenario.resolved_strain()
    cases = []
    scheduled = {e.time_h: e.value for e in scenario.events if e.kind == "harvest"}
    for unit in range(units):
        log = result.logs[unit]
        harvest = log[log[:, 1] == integ.HARVEST] if len(log) else np.zeros((0, integ.LOG_FIELDS))
        fractions = np.array([scheduled.get(t, scenario.harvest.fraction) for t in harvest[:, 0]])
        truth = UnitTruth(grid, result.states[unit], observables[unit], result.dynamic[unit], ambient[unit],
                          batch.params[unit])  # fmt: skip
        rng = np.random.default_rng([seed, unit, NOISE_FAMILIES.index(family)])
        readings = {name: read_sensor(name, truth, strain, scenario, unit, rng) for name in sensors}
        cases.append(SuiteCase(profile, family, unit, strain, grid, observables[unit, :, 0].copy(),
                               observables[unit, :, 1].copy(), observables[unit, :, 2].copy(), harvest[:, 0].copy(),
                               fractions, readings))  # fmt: skip
    return cases
