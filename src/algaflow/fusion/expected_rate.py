"""The model's expected net specific growth rate, read from a unit's own sensors: the known input that
informs the growth chain's random walk on μ (fusion.growth).

    μ_model = (V_lit / V) μ_max ⟨f_light(I; k X d)⟩ f_T(T) f_pH(pH) f_O2(DO) f_N(NO3) − r(T)

with the kinetics of algaflow.model: ⟨f_light⟩ the light response averaged over the lit cross-section
(Beer–Lambert through biomass X, optical depth k X d), the tank dark (gross rate 0) and the loop mixing
fast enough that X is the same in both compartments (the simulator's volume-weighted net rate then
equals this). Each condition is read from its sensor at the lit compartment where the unit has one,
else at the tank: incident PAR ``par_surface``; temperature ``temp_tube``/``temp_tank``; pH
``ph_tube``/``ph_tank``; DO ``do_tube``/``do_tank``; ``nitrate``. A condition without a sensor
contributes the factor 1 (its effect is left to the random walk; respiration is then taken at 20 °C);
without ``par_surface`` there is no model input at all. Readings are causal: each sensor's last valid
sample (held over dropouts; readings outside the catalog's plausible range are not valid), after a
running median over ``MEDIAN_SAMPLES`` samples that removes spikes and bubbles (the first ones padded with
the first value); a condition is read, at each time, from the first of its sensors with a reading so far.
fusion.online_rate streams the same readings frame by frame.

The chain takes the increments Δμ_model between consecutive samples as a known input, so the state is
μ = μ_model + δ with δ the model's error as a random walk: the sensors' white noise on μ_model telescopes
(μ_k − μ_0 carries e_k − e_0, not a sum of them) and a unit-to-unit error in μ_max is absorbed by δ.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit

from algaflow.catalog import SENSORS, Strain, sensors_with_role
from algaflow.fusion.sensor_health import trailing_median
from algaflow.fusion.timeline import last_sample_index
from algaflow.model.kinetics import cardinal_ph, cardinal_temperature, monod, oxygen_inhibition, respiration
from algaflow.model.optics import average_growth_factor

MEDIAN_SAMPLES = 5
CONDITIONS = ("par", "temperature", "ph", "dissolved_o2", "nitrate")  # what expected_growth_rate reads
# condition → the catalog's sensors that read it (role "condition"), preferred first (the lit compartment)
CONDITION_SENSORS = {
    condition: tuple(s for s in sensors_with_role("condition") if SENSORS[s].condition == condition)
    for condition in CONDITIONS
}
if unread := {SENSORS[s].condition for s in sensors_with_role("condition")} - set(CONDITIONS):
    raise ValueError(f"sensors.toml names conditions the model does not read: {', '.join(sorted(unread))}")
MODEL_INPUT_SENSORS = tuple(s for group in CONDITION_SENSORS.values() for s in group)
Samples = tuple[np.ndarray, np.ndarray]  # (times_h, values) of one sensor


@dataclass(frozen=True, slots=True)
class ReactorGeometry:
    """What the light response needs of the reactor: lit geometry ("tube" or "flat_panel"), light path
    (tube inner diameter or panel depth, m) and the volumes of the dark tank and the lit part (L).
    Defaults: the lab tubular loop (scenarios/lab_tubular_chlorella.toml)."""

    geometry: str = "tube"
    light_path_m: float = 0.05
    volume_tank_l: float = 20.0
    volume_lit_l: float = 60.0

    def __post_init__(self) -> None:
        if self.geometry not in ("tube", "flat_panel"):
            raise ValueError(f"geometry must be 'tube' or 'flat_panel' (got {self.geometry!r})")
        if not (self.light_path_m > 0 and self.volume_lit_l > 0 and self.volume_tank_l >= 0):
            raise ValueError("light path and lit volume must be > 0 and the tank volume ≥ 0")

    @property
    def lit_fraction(self) -> float:
        return self.volume_lit_l / (self.volume_lit_l + self.volume_tank_l)


def causal_reading(times_h: np.ndarray, sample_times_h: np.ndarray, values: np.ndarray) -> np.ndarray:
    """The sensor's value at each of ``times_h`` as a live reader sees it: the running median of its last
    ``MEDIAN_SAMPLES`` valid samples at or before that time (NaN before its first one)."""
    sample_times_h = np.asarray(sample_times_h, dtype=float)
    values = np.asarray(values, dtype=float)
    valid = np.isfinite(values) & np.isfinite(sample_times_h)
    sample_times_h, values = sample_times_h[valid], values[valid]
    result = np.full(np.shape(times_h), np.nan)
    if values.size == 0:
        return result
    order = np.argsort(sample_times_h, kind="stable")
    sample_times_h, values = sample_times_h[order], values[order]
    running = trailing_median(values, MEDIAN_SAMPLES)
    index = last_sample_index(sample_times_h, times_h)
    seen = index >= 0
    result[seen] = running[index[seen]]
    return result


def expected_growth_rate(conditions: dict[str, np.ndarray], biomass_g_per_l: np.ndarray, strain: Strain,
                         reactor: ReactorGeometry) -> np.ndarray:  # fmt: skip
    """μ_model (1/h) from the conditions (keys of ``CONDITION_SENSORS``, each broadcastable to
    ``biomass_g_per_l``; a missing key or a NaN value contributes the factor 1), see the module doc."""
    biomass = np.clip(np.asarray(biomass_g_per_l, dtype=float), 0.0, None)
    par = np.clip(np.asarray(conditions["par"], dtype=float), 0.0, None)
    light = average_growth_factor(reactor.geometry, np.nan_to_num(par), biomass, reactor.light_path_m,
                                  strain.extinction_per_g_per_l_per_m, strain.light_a, strain.light_b,
                                  strain.light_c)  # fmt: skip

    def factor(name: str, response) -> np.ndarray:
        value = conditions.get(name)
        if value is None:
            return np.ones_like(biomass)
        value = np.asarray(value, dtype=float)
        return np.where(np.isfinite(value), response(np.nan_to_num(value)), 1.0)

    temperature = factor("temperature",
                         lambda t: cardinal_temperature(t, strain.t_min_c, strain.t_opt_c, strain.t_max_c))
    ph = factor("ph", lambda p: cardinal_ph(p, strain.ph_min, strain.ph_opt, strain.ph_max))
    oxygen = factor("dissolved_o2", lambda d: oxygen_inhibition(d, strain.do_max_mg_per_l, strain.do_exponent))
    nitrate = factor("nitrate", lambda n: monod(n, strain.nitrate_k_mg_per_l))
    temperature_c = np.asarray(conditions.get("temperature", np.nan), dtype=float)
    respiration_c = np.where(np.isfinite(temperature_c), temperature_c, 20.0)
    gross = reactor.lit_fraction * strain.mu_max_per_h * light * temperature * ph * oxygen * nitrate
    return gross - respiration(respiration_c, strain.respiration_per_h, strain.respiration_q10)


def model_rate_input(times_h: np.ndarray, readings: dict[str, Samples], biomass_g_per_l: np.ndarray, strain: Strain,
                     reactor: ReactorGeometry) -> np.ndarray | None:  # fmt: skip
    """The growth chain's known input at each of ``times_h``: Δμ_model since the previous sample (the first
    entry is μ_model itself, the prior mean of μ), or None when the unit has no ``par_surface``.
    ``readings``: sensor → (sample times, values), any sampling; ``biomass_g_per_l`` at ``times_h``
    (the causal OD-only estimate: self-shading changes slowly, so its error barely moves ⟨f_light⟩)."""
    if "par" not in condition_sources(readings):
        return None
    medians = np.full((np.size(times_h), len(MODEL_INPUT_SENSORS)), np.nan)
    for column, sensor in enumerate(MODEL_INPUT_SENSORS):
        if sensor in readings:
            sample_times, values = readings[sensor]
            medians[:, column] = causal_reading(times_h, sample_times, plausible(sensor, values))
    rate = rate_from_medians(medians, biomass_g_per_l, strain, reactor)
    return rate_increments(rate, 0.0)[0]


def plausible(sensor: str, values: np.ndarray) -> np.ndarray:
    """``values`` with those outside the catalog's range of ``sensor`` as NaN (pH 23 says nothing)."""
    low, high = SENSORS[sensor].range
    values = np.asarray(values, dtype=float)
    return np.where((values >= low) & (values <= high), values, np.nan)


def rate_from_medians(medians: np.ndarray, biomass_g_per_l: np.ndarray, strain: Strain,
                      reactor: ReactorGeometry) -> np.ndarray:  # fmt: skip
    """μ_model (1/h) at each row of ``medians`` (rows, ``MODEL_INPUT_SENSORS``: each sensor's causal reading,
    NaN where it has none yet): each condition from the first of its sensors with a reading at that row; NaN
    where there is no light reading or no biomass."""
    conditions = {}
    for condition, sensors in CONDITION_SENSORS.items():
        value = np.full(medians.shape[0], np.nan)
        for sensor in reversed(sensors):  # the preferred sensor last: it overwrites where it has a reading
            column = medians[:, MODEL_INPUT_SENSORS.index(sensor)]
            value = np.where(np.isfinite(column), column, value)
        conditions[condition] = value
    rate = expected_growth_rate(conditions, biomass_g_per_l, strain, reactor)
    return np.where(np.isfinite(conditions["par"]) & np.isfinite(biomass_g_per_l), rate, np.nan)


def rate_increments(rate: np.ndarray, last_rate: float) -> tuple[np.ndarray, float]:
    """Δμ_model at each sample from μ_model (``rate``, NaN where it cannot be read: the last one holds) and
    the one before the first (``last_rate``; 0 before any); returns the increments and the last rate."""
    rate = np.ascontiguousarray(rate, dtype=float)
    increments, last = np.empty(rate.size), np.array([last_rate], dtype=float)
    segmented_increments(rate, np.array([0]), np.array([rate.size]), last, increments,
                         np.zeros(rate.size, dtype=np.bool_), np.empty(rate.size))  # fmt: skip
    return increments, float(last[0])


@njit(cache=True)
def segmented_increments(rate, starts, ends, last, increments, saves, saved) -> None:  # fmt: skip
    """:func:`rate_increments` on several records at once: record j is ``rate[starts[j]:ends[j]]`` after
    ``last[j]`` (updated); ``saved[k]`` gets the last rate after each sample of ``saves``."""
    for j in range(starts.size):
        held = last[j]
        for k in range(starts[j], ends[j]):
            if rate[k] == rate[k]:
                increments[k] = rate[k] - held
                held = rate[k]
            else:
                increments[k] = 0.0
            if saves[k]:
                saved[k] = held
        last[j] = held


def condition_sources(readings: dict[str, Samples]) -> dict[str, str]:
    """condition → the sensor it is read from: the first of ``CONDITION_SENSORS`` with a finite reading."""
    sources = {}
    for condition, sensors in CONDITION_SENSORS.items():
        for sensor in sensors:
            if sensor in readings and np.isfinite(readings[sensor][1]).any():
                sources[condition] = sensor
                break
    return sources


def unit_model_readings(times_h: np.ndarray, readings: dict[str, np.ndarray]) -> dict[str, Samples]:
    """Wide readings (sensor → values at ``times_h``, NaN where none) as the (times, values) pairs of the
    model-input sensors the unit has."""
    return {s: (times_h, np.asarray(readings[s], dtype=float)) for s in MODEL_INPUT_SENSORS if s in readings}
