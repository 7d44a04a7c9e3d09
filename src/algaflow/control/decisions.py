"""Decisions from the units' estimates and readings: a pure step from (new rows, the decision state, the
policy) to (decisions, new state). The live pipeline and ``algaflow fuse`` both call :func:`decide`; the
kinds, their titles and severities are the catalog's (algaflow.catalog.decisions).

**Harvest advice judges growth over the light cycle.** A culture respires in the dark, so its growth rate at
night says nothing about whether it has finished growing. The advice is judged on the daily net growth, the
specific growth over the last light cycle of D = 24 h,

    r(t) = [ln X̂(t) − ln X̂(s) − (L(t) − L(s))] / (t − s),      s the last window sample at or before t − D,

with L(t) = Σ ln(1 − f_i) over the harvests and dilutions (fraction f_i) up to t, so a harvest inside the
window does not count as loss. A biomass estimate's error is mostly the probe's baseline (its offset after
calibration), the same at both ends of a day, which cancels in the difference; what does not cancel is each
end's own error σ_ℓ (the sd of X̂ given the baseline and its drift, from the estimator's covariance) and how
far the baseline can move in t − s, its random walk q (t − s) and drift v_d (t − s)²:

    σ_r = √((σ_ℓ(t)/X̂(t))² + (σ_ℓ(s)/X̂(s))² + (q (t − s) + v_d (t − s)²) / (X̂(t) X̂(s))) / (t − s)

(``ESTIMATE_INPUTS``; where the estimator gives no such terms, σ_ℓ is the whole biomass sd and q = v_d = 0:
conservative). A calibration slope error cancels in the ratio. As control.harvest does for μ,

    p = P(r < θ) = Φ((θ − r) / σ_r),   ready on at p ≥ p_on with X̂ ≥ X_min, off at p < p_off.

The window holds the first estimate of each ``WINDOW_BIN_H`` bin (so the state stays small and the result
does not depend on how rows are batched). **The transient after a harvest or dilution** (``transient_h``:
the tube drains and refills, an OD reading lands mid-mix) is no verdict: no window sample is taken in it and
no advice changes in it, and the harvest clears the advice (the operator has acted). One that removes at
least ``restart_fraction`` starts a new culture for the advice: its window starts after the transient, so
the first verdict comes a light cycle later; a smaller one is corrected for through L.

**Alarms use robust values with hysteresis** (control.alarms' growth losses): each DO or temperature reading
is replaced by the median of it and the sensor's previous ``robust_samples − 1`` readings, so one glitch (or
two in five) neither opens nor closes an alarm; the DO alarm follows the highest robust DO of the row, the
temperature alarm the robust temperature that costs the most growth.

**Sensor faults are decisions**: per sensor, ``sensor_fault`` opens at

- ``stuck``: n equal readings in a row, n the shortest run of at least ``STUCK_RUN`` that a healthy sensor
  of noise σ and resolution q repeats by chance with probability ≤ ``STUCK_CHANCE`` per reading,
  (q/σ)^(n−1) / ((2π)^((n−1)/2) √n) (fusion.sensor_health: 7 for OD750, 9 for PAR; a sensor whose noise
  is below its resolution is not judged, nor a reading at a range end: a dark PAR sensor reads 0 for
  hours); closed by the next different reading;
- ``out_of_range``: a robust reading at or above the top of the catalog range (a probe pinned at its end)
  or below its bottom by more than 3 noise sd; closed once back inside;
- ``silent``: no reading for ``silent_after_h`` (at least 10 sampling periods) while the unit sends others;
  closed by the next reading;
- ``disagreeing``: the two probes of a dark pair (fusion.sensor_information.DARK_PAIRS: tank and tube pH,
  one water once the light has been off for ``DARK_SETTLE_H``) drift apart: Page's two-sided CUSUM of
  fusion.sensor_health on their difference D, standardised by its spread over the first ``DRIFT_WINDOW``
  joint dark samples and beyond the electrodes' calibration accuracy τ, u = sign(e) max(0, |e| − τ/σ_D)
  clipped to ±c, opens on both probes at max(S⁺, S⁻) > h (the offline median test is not run live; a tube
  electrode drifting 0.05 pH a day under 12 h nights is flagged 16–18 h after the drift starts, in its
  first night), and closes once the sums fall back;

and ``sensor_ok`` closes it, so faults reach the fleet view and the Alarms page with the catalog's words. Lab
samples and actuator settings (catalog roles ``lab``, ``actuator``: a lamp at full power is no probe pinned
at its end) raise no sensor fault.

All of it runs for every unit at once: the state is a few arrays with a leading unit axis
(:class:`DecisionState`, checkpointable), the rows of a batch go through one compiled loop, and only the
decisions taken become Python objects; the rows of a unit may come in batches of any size with the same result.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from numba import njit

from algaflow.catalog import SENSORS, Strain
from algaflow.catalog.decisions import fault_text
from algaflow.catalog.events import EVENTS
from algaflow.control.alarms import (
    AlarmPolicy,
    degas_threshold_mg_per_l,
    oxygen_growth_loss,
    temperature_growth_loss,
    temperature_thresholds_c,
)
from algaflow.control.harvest import HarvestPolicy
from algaflow.fusion.sensor_health import CUSUM_THRESHOLD, DRIFT_WINDOW, STUCK_RUN, page_step
from algaflow.fusion.sensor_information import (
    DARK_PAIRS,
    DARK_PAR_UMOL,
    DARK_SETTLE_H,
    HOLD_H,
    PH_CALIBRATION_ACCURACY,
)

HOUR_US = 3_600_000_000
WINDOW_BIN_H = 1.0 / 6.0  # the daily window keeps one estimate per 10 minutes
WINDOW_CAPACITY = 160  # window samples a unit keeps: a day of bins and a few more
STUCK_CHANCE = 1e-7  # per reading: a healthy sensor repeats this often at most (module doc)
SENSOR_NAMES = tuple(SENSORS)  # the columns of ReadingRows.values
DO_SENSORS = ("do_tank", "do_tube")
TEMPERATURE_SENSORS = ("temp_tank", "temp_tube")
FAULTS = ("", "silent", "stuck", "out_of_range", "disagreeing")  # codes 0..4 (0: none)
# Dark pairs (fusion.sensor_information.DARK_PAIRS): per pair, the state's slots and the reference window.
(LAST_LIGHT, LAST_PAR_TIME, LAST_PAR, LAST_OTHER_TIME, LAST_OTHER, REFERENCE_COUNT, REFERENCE_DIFFERENCE, SPREAD,
 CUSUM_UP, CUSUM_DOWN) = range(10)  # fmt: skip
PAIR_SLOTS = 10
PAIR_INDEX = np.array([[SENSOR_NAMES.index(own), SENSOR_NAMES.index(other)] for own, other in DARK_PAIRS],
                      dtype=np.int64).reshape(-1, 2)  # fmt: skip
PAIR_NOISE = np.array([float(np.hypot(SENSORS[own].noise_sd, SENSORS[other].noise_sd)) for own, other in DARK_PAIRS])
UNWATCHED_ROLES = ("lab", "actuator")  # sampled by hand or set by command: no sensor fault
# DecisionRows.estimates columns: the estimate, the fraction removed just before it, and (NaN where the
# estimator gives none) the biomass sd not shared across a window through the probe's baseline, the
# baseline's random-walk variance rate ((g/L)²/h) and its drift's variance ((g/L/h)²) (module doc).
ESTIMATE_INPUTS = ("biomass_g_per_l", "biomass_sd", "growth_rate_per_h", "growth_rate_sd", "dilution",
                   "biomass_local_sd", "baseline_variance_per_h", "baseline_drift_variance")  # fmt: skip
KINDS = ("harvest_ready", "harvest_clear", "degas_on", "degas_off", "temperature_alarm", "temperature_ok",
         "sensor_fault", "sensor_ok")  # fmt: skip
READY, DEGAS, HOT = range(3)  # DecisionState.flags columns (HOT: the temperature alarm)
BEST_PRODUCTIVITY, BEST_BIOMASS, LOG_SURVIVAL, LAST_DILUTION = range(4)  # DecisionState.harvest columns


@dataclass(frozen=True, slots=True)
class Decision:
    """An advice or alarm for a unit at a time, with its reason in plain words and its parameters; ``kind``
    is one of the catalog's (algaflow.catalog.decisions)."""

    unit_id: str
    time_us: int
    kind: str
    reason: str
    params: dict


@dataclass(frozen=True, slots=True)
class DecisionPolicy:
    """How decisions are taken (module doc)."""

    harvest: HarvestPolicy = field(default_factory=HarvestPolicy)
    alarms: AlarmPolicy = field(default_factory=AlarmPolicy)
    day_h: float = 24.0  # the light cycle the advice judges growth over
    transient_h: float = EVENTS["harvest"].transient_h  # after a harvest or dilution: no verdict (the catalog's)
    restart_fraction: float = 0.2  # a harvest removing at least this much starts the window afresh
    robust_samples: int = 5  # alarm values: the median of this many readings
    silent_after_h: float = 0.5  # a sensor quiet this long (or 10 periods) while the unit reports is silent

    def __post_init__(self) -> None:
        if not (0 < self.day_h <= 48 and self.transient_h >= 0 and 0 < self.restart_fraction <= 1):
            raise ValueError("DecisionPolicy needs 0 < day_h ≤ 48, transient_h ≥ 0 and restart_fraction in (0, 1]")
        if not 1 <= self.robust_samples <= 15 or self.robust_samples % 2 == 0 or not self.silent_after_h > 0:
            raise ValueError("DecisionPolicy needs an odd robust_samples in [1, 15] and silent_after_h > 0")


STATE_ARRAYS = ("flags", "harvest", "window", "window_count", "recent", "runs", "last_seen_us", "faults",
                "alarm_limits", "pairs", "pair_reference")  # fmt: skip


@dataclass(slots=True)
class DecisionState:
    """Every unit's decision state between steps, as arrays with a leading unit axis (one unit is a batch of
    one); :meth:`arrays` and :meth:`from_arrays` save and load it."""

    flags: np.ndarray  # (units, 3) bool: harvest ready, degas, temperature alarm
    harvest: np.ndarray  # (units, 4): best μ X so far, its X, L = Σ ln(1 − f), time of the last dilution (µs)
    window: np.ndarray  # (units, WINDOW_CAPACITY, 4): time (µs), ln X, var ln X, L of each window sample
    window_count: np.ndarray  # (units,)
    recent: np.ndarray  # (units, sensors, robust_samples − 1): each sensor's last readings (NaN: none)
    runs: np.ndarray  # (units, sensors, 2): last reading, equal readings in a row
    last_seen_us: np.ndarray  # (units, sensors), NaN: never
    faults: np.ndarray  # (units, sensors) int: the open fault's code in FAULTS
    alarm_limits: np.ndarray  # (units, 6): DO on, off; T low on, off; T high on, off (the unit's strain)
    pairs: np.ndarray  # (units, dark pairs, PAIR_SLOTS): light, the other probe's last reading, reference, CUSUM
    pair_reference: np.ndarray  # (units, dark pairs, DRIFT_WINDOW): the first differences in the dark

    @classmethod
    def empty(cls, policy: DecisionPolicy) -> DecisionState:
        sensors = len(SENSOR_NAMES)
        return cls(np.zeros((0, 3), dtype=bool), np.empty((0, 4)), np.empty((0, WINDOW_CAPACITY, 4)),
                   np.zeros(0, dtype=np.int64), np.empty((0, sensors, policy.robust_samples - 1)),
                   np.empty((0, sensors, 2)), np.empty((0, sensors)), np.zeros((0, sensors), dtype=np.int64),
                   np.empty((0, 6)), np.empty((0, len(DARK_PAIRS), PAIR_SLOTS)),
                   np.empty((0, len(DARK_PAIRS), DRIFT_WINDOW)))  # fmt: skip

    @property
    def units(self) -> int:
        return self.flags.shape[0]

    def add_unit(self, strain: Strain, policy: DecisionPolicy) -> int:
        """A new unit of ``strain`` with nothing decided; returns its index."""
        sensors = len(SENSOR_NAMES)
        limits = (degas_threshold_mg_per_l(strain, policy.alarms.loss_on),
                  degas_threshold_mg_per_l(strain, policy.alarms.loss_off),
                  *np.array([temperature_thresholds_c(strain, policy.alarms.loss_on),
                             temperature_thresholds_c(strain, policy.alarms.loss_off)]).T.ravel())  # fmt: skip
        self.flags = np.vstack([self.flags, np.zeros((1, 3), dtype=bool)])
        self.harvest = np.vstack([self.harvest, [[-np.inf, np.nan, 0.0, np.nan]]])
        self.window = np.concatenate([self.window, np.full((1, WINDOW_CAPACITY, 4), np.nan)])
        self.window_count = np.r_[self.window_count, 0]
        self.recent = np.concatenate([self.recent, np.full((1, sensors, self.recent.shape[2]), np.nan)])
        self.runs = np.concatenate([self.runs, np.tile([[[np.nan, 0.0]]], (1, sensors, 1))])
        self.last_seen_us = np.vstack([self.last_seen_us, np.full((1, sensors), np.nan)])
        self.faults = np.vstack([self.faults, np.zeros((1, sensors), dtype=np.int64)])
        self.alarm_limits = np.vstack([self.alarm_limits, [limits]])
        pair = np.full((1, len(DARK_PAIRS), PAIR_SLOTS), np.nan)
        pair[..., [REFERENCE_COUNT, CUSUM_UP, CUSUM_DOWN]] = 0.0
        self.pairs = np.concatenate([self.pairs, pair])
        self.pair_reference = np.concatenate([self.pair_reference, np.full((1, len(DARK_PAIRS), DRIFT_WINDOW), np.nan)])
        return self.units - 1

    def reset_unit(self, index: int, strain: Strain, policy: DecisionPolicy) -> None:
        """Forget what unit ``index`` decided (to replay its record), as :meth:`add_unit` leaves a new one."""
        fresh = DecisionState.empty(policy)
        fresh.add_unit(strain, policy)
        for name in STATE_ARRAYS:
            getattr(self, name)[index] = getattr(fresh, name)[0]

    def copy(self) -> DecisionState:
        return DecisionState(**{name: getattr(self, name).copy() for name in STATE_ARRAYS})

    def arrays(self) -> dict[str, np.ndarray]:
        return {name: getattr(self, name).copy() for name in STATE_ARRAYS}

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> DecisionState:
        missing = set(STATE_ARRAYS) - set(arrays)
        if missing:
            raise ValueError(f"decision state lacks {', '.join(sorted(missing))}")
        state = cls(**{name: np.array(arrays[name]) for name in STATE_ARRAYS})
        state.flags = state.flags.astype(bool)
        state.window_count = state.window_count.astype(np.int64)
        state.faults = state.faults.astype(np.int64)
        return state


@dataclass(frozen=True, slots=True)
class DecisionRows:
    """New rows of any units, each unit's in time order: per row its unit (index in the state), time, good
    readings of every catalog sensor (``SENSOR_NAMES`` columns, NaN where none) and, where the row has one,
    the unit's estimate (biomass, its sd, μ, its sd) and the fraction removed just before it (NaN: none)."""

    unit: np.ndarray  # (rows,) int
    time_us: np.ndarray  # (rows,) int
    values: np.ndarray  # (rows, sensors)
    estimates: np.ndarray  # (rows, ESTIMATE_INPUTS): NaN where the row has no estimate (module doc)

    def __post_init__(self) -> None:
        estimates = np.asarray(self.estimates, dtype=float)
        if estimates.ndim == 2 and estimates.shape[1] == 5:  # without the window terms: the conservative σ_r
            estimates = np.column_stack([estimates, np.full((estimates.shape[0], 3), np.nan)])
        object.__setattr__(self, "estimates", estimates)

    @classmethod
    def of_unit(cls, unit: int, time_us: np.ndarray, readings: dict[str, np.ndarray],
                estimates: np.ndarray | None = None) -> DecisionRows:  # fmt: skip
        """One unit's rows from sensor → values at ``time_us``; unknown sensors are left out."""
        time_us = np.asarray(time_us, dtype=np.int64)
        values = np.full((time_us.size, len(SENSOR_NAMES)), np.nan)
        for j, name in enumerate(SENSOR_NAMES):
            if name in readings:
                values[:, j] = readings[name]
        if estimates is None:
            estimates = np.full((time_us.size, len(ESTIMATE_INPUTS)), np.nan)
        return cls(np.full(time_us.size, unit, dtype=np.int64), time_us, values, np.asarray(estimates, dtype=float))


def _sensor_constants(policy: DecisionPolicy) -> tuple[np.ndarray, ...]:
    specs = [SENSORS[name] for name in SENSOR_NAMES]
    watched = [not set(s.roles) & set(UNWATCHED_ROLES) for s in specs]
    stuck_run = np.array([stuck_run_length(s.noise_sd, s.resolution) if w else np.inf
                          for s, w in zip(specs, watched, strict=True)])  # fmt: skip
    tolerance = np.array([0.5 * s.resolution for s in specs])
    # Below the range only by more than the noise can put a reading there (a dark PAR sensor reads ±σ at 0).
    low = np.array([s.range[0] - (0.0 if s.relative_noise else 3.0 * s.noise_sd) if w else -np.inf
                    for s, w in zip(specs, watched, strict=True)])  # fmt: skip
    bottom = np.array([s.range[0] for s in specs])
    high = np.array([s.range[1] if w else np.inf for s, w in zip(specs, watched, strict=True)])
    silent_us = np.array([max(policy.silent_after_h * HOUR_US, 10 * s.period_s * 1e6) if w else np.inf
                          for s, w in zip(specs, watched, strict=True)])  # fmt: skip
    group = np.array([1 if n in DO_SENSORS else 2 if n in TEMPERATURE_SENSORS else 0 for n in SENSOR_NAMES])
    return stuck_run, tolerance, low, bottom, high, silent_us, group


def stuck_run_length(noise_sd: float, resolution: float, chance: float = STUCK_CHANCE) -> float:
    """The run of equal readings that marks a sensor stuck (module doc); ∞ where noise < resolution."""
    if not noise_sd >= max(resolution, 1e-12):
        return math.inf
    ratio = resolution / noise_sd
    run = STUCK_RUN
    while ratio ** (run - 1) / ((2 * math.pi) ** ((run - 1) / 2) * math.sqrt(run)) > chance:
        run += 1
    return float(run)


@njit(cache=True)
def _median_of_finite(values: np.ndarray) -> float:
    kept = np.sort(values[np.isfinite(values)])
    n = kept.size
    if n == 0:
        return math.nan
    return kept[n // 2] if n % 2 else 0.5 * (kept[n // 2 - 1] + kept[n // 2])


@njit(cache=True, error_model="numpy")
def _dark_pairs(u, t, row, pairs, reference, pair_index, pair_noise, par_column, hold_us, settle_us):
    """One row of the dark-pair drift test (module doc) for unit ``u``; True for the sensors of a pair that
    disagrees now (its CUSUM above h, held between joint dark samples)."""
    flagged = np.zeros(row.shape[0], dtype=np.bool_)
    par = row[par_column]
    for p in range(pair_index.shape[0]):
        state = pairs[u, p]
        if math.isfinite(par):
            state[LAST_PAR_TIME], state[LAST_PAR] = t, par
            if par > DARK_PAR_UMOL or not math.isfinite(state[LAST_LIGHT]):  # a record that starts dark: since then
                state[LAST_LIGHT] = t
        own, other = row[pair_index[p, 0]], row[pair_index[p, 1]]
        if math.isfinite(other):
            state[LAST_OTHER_TIME], state[LAST_OTHER] = t, other
        dark = (t - state[LAST_PAR_TIME] <= hold_us and state[LAST_PAR] <= DARK_PAR_UMOL
                and t - state[LAST_LIGHT] >= settle_us)  # NaN compares False  # fmt: skip
        if math.isfinite(own) and dark and t - state[LAST_OTHER_TIME] <= hold_us:
            difference = own - state[LAST_OTHER]
            count = int(state[REFERENCE_COUNT])
            width = reference.shape[2]
            if count < width:  # the reference: the first window of joint dark samples
                reference[u, p, count] = difference
                state[REFERENCE_COUNT] = count + 1
                if count + 1 == width:
                    first = np.median(reference[u, p])
                    spread = 1.4826 * np.median(np.abs(reference[u, p] - first))
                    state[REFERENCE_DIFFERENCE], state[SPREAD] = first, max(pair_noise[p], spread)
            else:  # Page's two-sided CUSUM beyond the calibration tolerance (fusion.sensor_health)
                spread = state[SPREAD]
                standardised = (difference - state[REFERENCE_DIFFERENCE]) / spread
                state[CUSUM_UP], state[CUSUM_DOWN] = page_step(state[CUSUM_UP], state[CUSUM_DOWN], standardised,
                                                               PH_CALIBRATION_ACCURACY / spread)  # fmt: skip
        if max(state[CUSUM_UP], state[CUSUM_DOWN]) > CUSUM_THRESHOLD:
            flagged[pair_index[p, 0]] = True
            flagged[pair_index[p, 1]] = True
    return flagged


@njit(cache=True, error_model="numpy")
def _decide(unit, time_us, values, estimates, day_us, transient_us, restart_fraction, bin_us, threshold,
            probability_on, probability_off, min_biomass, stuck_run, tolerance, low, bottom, high, silent_us, group,
            flags, harvest, window, window_count, recent, runs, last_seen, faults, limits, ready_out,
            daily_out, pairs, pair_reference, pair_index, pair_noise, par_column, hold_us, settle_us):  # fmt: skip
    # Each event: (row, kind index in KINDS, sensor index or -1, fault code, a, b, c, d).
    events = [(0, 0, 0, 0, 0.0, 0.0, 0.0, 0.0)]
    events.pop()
    sensors = values.shape[1]
    memory = recent.shape[2]
    buffer = np.empty(memory + 1)
    for k in range(unit.shape[0]):
        u, t = unit[k], float(time_us[k])
        # Sensor faults and robust values (module doc).
        do_high, do_seen = -math.inf, False
        hot_on, hot_seen, hot_off = False, False, True
        hot_values = np.full(2, math.nan)  # the robust temperatures of the row, in SENSOR_NAMES order
        disagreeing = _dark_pairs(u, t, values[k], pairs, pair_reference, pair_index, pair_noise, par_column,
                                  hold_us, settle_us)  # fmt: skip
        for j in range(sensors):
            v = values[k, j]
            now = faults[u, j]
            if math.isfinite(v):
                last_seen[u, j] = t
                buffer[:memory] = recent[u, j]
                buffer[memory] = v
                robust = _median_of_finite(buffer)
                if memory > 0:
                    recent[u, j, : memory - 1] = recent[u, j, 1:]
                    recent[u, j, memory - 1] = v
                at_end = v <= bottom[j] + tolerance[j] or v >= high[j] - tolerance[j]  # dark, no flow: no evidence
                run = runs[u, j, 1] + 1.0 if abs(v - runs[u, j, 0]) <= tolerance[j] and not at_end else 1.0
                runs[u, j, 0], runs[u, j, 1] = v, run
                if run >= stuck_run[j]:
                    now = 2
                elif robust < low[j] or robust >= high[j]:
                    now = 3
                else:
                    now = 4 if disagreeing[j] else 0
                if group[j] == 1:
                    do_seen = True
                    do_high = max(do_high, robust)
                elif group[j] == 2:
                    hot_seen = True
                    hot_values[1 if math.isfinite(hot_values[0]) else 0] = robust
                    hot_on = hot_on or robust <= limits[u, 2] or robust >= limits[u, 4]
                    hot_off = hot_off and limits[u, 3] < robust < limits[u, 5]
            elif math.isfinite(last_seen[u, j]) and t - last_seen[u, j] > silent_us[j]:
                now = 1
            if now != faults[u, j]:
                if faults[u, j] != 0:
                    events.append((k, 7, j, faults[u, j], 0.0, 0.0, 0.0, 0.0))
                if now != 0:
                    events.append((k, 6, j, now, 0.0, 0.0, 0.0, 0.0))
                faults[u, j] = now
        # Alarms: hysteresis on the robust values (control.alarms' losses, as thresholds on the reading).
        if do_seen:
            degas = flags[u, 1]
            if not degas and do_high >= limits[u, 0]:
                flags[u, 1] = True
                events.append((k, 2, -1, 0, do_high, 0.0, 0.0, 0.0))
            elif degas and do_high < limits[u, 1]:
                flags[u, 1] = False
                events.append((k, 3, -1, 0, do_high, 0.0, 0.0, 0.0))
        if hot_seen:
            hot = flags[u, 2]
            if not hot and hot_on:
                flags[u, 2] = True
                events.append((k, 4, -1, 0, hot_values[0], hot_values[1], 0.0, 0.0))
            elif hot and hot_off:
                flags[u, 2] = False
                events.append((k, 5, -1, 0, hot_values[0], hot_values[1], 0.0, 0.0))
        # Harvest advice on the daily net growth (module doc).
        biomass, biomass_sd, rate, removed = estimates[k, 0], estimates[k, 1], estimates[k, 2], estimates[k, 4]
        daily_out[k, 0], daily_out[k, 1] = math.nan, math.nan
        if not math.isfinite(biomass):
            ready_out[k] = flags[u, 0]
            continue
        if removed > 0.0:
            harvest[u, 2] += math.log1p(-min(removed, 1.0 - 1e-12))
            harvest[u, 3] = t
            if removed >= restart_fraction:
                window_count[u] = 0
        productivity = rate * biomass
        if math.isfinite(productivity) and productivity > harvest[u, 0]:
            harvest[u, 0], harvest[u, 1] = productivity, biomass
        settled = not (t - harvest[u, 3] < transient_us)  # NaN (no dilution yet) compares False
        usable = biomass > 0.0 and math.isfinite(biomass_sd)
        local_sd = estimates[k, 5] if math.isfinite(estimates[k, 5]) else biomass_sd
        shared_rate = estimates[k, 6] if math.isfinite(estimates[k, 5] + estimates[k, 6]) else 0.0
        drift_variance = estimates[k, 7] if math.isfinite(estimates[k, 5] + estimates[k, 7]) else 0.0
        count = window_count[u]
        new_bin = count == 0 or math.floor(t / bin_us) > math.floor(window[u, max(count - 1, 0), 0] / bin_us)
        if usable and settled and new_bin:
            if count == window.shape[1]:  # full (a clock that jumped): drop the oldest
                window[u, : count - 1] = window[u, 1:]
                count -= 1
            window[u, count, 0], window[u, count, 1] = t, math.log(biomass)
            window[u, count, 2], window[u, count, 3] = (local_sd / biomass) ** 2, harvest[u, 2]
            count += 1
        dropped = 0
        while count - dropped >= 2 and window[u, dropped + 1, 0] <= t - day_us:
            dropped += 1
        if dropped:
            window[u, : count - dropped] = window[u, dropped:count]
            count -= dropped
        window_count[u] = count
        was = flags[u, 0]
        is_ready = was
        daily, daily_sd, elapsed = math.nan, math.nan, math.nan
        if usable and settled and count > 0 and window[u, 0, 0] <= t - day_us:
            elapsed = (t - window[u, 0, 0]) / 3.6e9
            daily = (math.log(biomass) - window[u, 0, 1] - (harvest[u, 2] - window[u, 0, 3])) / elapsed
            shared = (shared_rate * elapsed + drift_variance * elapsed**2) / (biomass * math.exp(window[u, 0, 1]))
            daily_sd = math.sqrt((local_sd / biomass) ** 2 + window[u, 0, 2] + shared) / elapsed
            daily_out[k, 0], daily_out[k, 1] = daily, daily_sd
            p = 0.5 * math.erfc(-(threshold - daily) / (max(daily_sd, 1e-12) * math.sqrt(2.0)))
            if p >= probability_on and biomass >= min_biomass:
                is_ready = True
            elif p < probability_off:
                is_ready = False
        if removed > 0.0:
            is_ready = False
        if is_ready != was:
            flags[u, 0] = is_ready
            if is_ready:
                events.append((k, 0, -1, 0, daily, daily_sd, elapsed, harvest[u, 1]))
            else:
                events.append((k, 1, -1, 0, daily, daily_sd, elapsed, removed if removed > 0.0 else 0.0))
        ready_out[k] = flags[u, 0]
    return events


@dataclass(frozen=True, slots=True)
class Advice:
    """The harvest advice at each row: ready, and the daily net growth r (1/h) and its sd it was judged on
    (NaN where the row gave no verdict: no estimate, a transient, less than a light cycle of window)."""

    ready: np.ndarray
    daily_growth_per_h: np.ndarray
    daily_growth_sd: np.ndarray


def decide(state: DecisionState, policy: DecisionPolicy, rows: DecisionRows, unit_ids: list[str],
           strains: list[Strain]) -> tuple[list[Decision], DecisionState, Advice]:  # fmt: skip
    """The decisions the new ``rows`` call for (module doc), the state after them (``state`` is left as it
    was) and the harvest advice at each row. ``unit_ids`` and ``strains``: by unit index, for the words."""
    state = state.copy()
    rows_count = rows.unit.shape[0]
    columns = len(ESTIMATE_INPUTS)
    if rows.values.shape != (rows_count, len(SENSOR_NAMES)) or rows.estimates.shape != (rows_count, columns):
        raise ValueError(f"DecisionRows: values must be (rows, {len(SENSOR_NAMES)}) and estimates (rows, 5 or "
                         f"{columns}): {', '.join(ESTIMATE_INPUTS)}")  # fmt: skip
    if rows_count and (rows.unit.min() < 0 or rows.unit.max() >= state.units):
        raise IndexError(f"unit index out of range (the state has {state.units} units)")
    ready, daily = np.zeros(rows_count, dtype=bool), np.full((rows_count, 2), np.nan)
    if not rows_count:
        return [], state, Advice(ready, daily[:, 0], daily[:, 1])
    harvest = policy.harvest
    events = _decide(np.ascontiguousarray(rows.unit, dtype=np.int64), np.ascontiguousarray(rows.time_us, dtype=float),
                     np.ascontiguousarray(rows.values, dtype=float), np.ascontiguousarray(rows.estimates, dtype=float),
                     policy.day_h * HOUR_US, policy.transient_h * HOUR_US, policy.restart_fraction,
                     WINDOW_BIN_H * HOUR_US, harvest.growth_threshold_per_h, harvest.probability_on,
                     harvest.probability_off, harvest.min_biomass_g_per_l, *_sensor_constants(policy), state.flags,
                     state.harvest, state.window, state.window_count, state.recent, state.runs, state.last_seen_us,
                     state.faults, state.alarm_limits, ready, daily, state.pairs, state.pair_reference, PAIR_INDEX,
                     PAIR_NOISE, SENSOR_NAMES.index("par_surface"), HOLD_H * HOUR_US,
                     DARK_SETTLE_H * HOUR_US)  # fmt: skip
    decisions = [_decision(event, rows, unit_ids, strains, policy) for event in events]
    return decisions, state, Advice(ready, daily[:, 0], daily[:, 1])


def _decision(event: tuple, rows: DecisionRows, unit_ids: list[str], strains: list[Strain],
              policy: DecisionPolicy) -> Decision:  # fmt: skip
    """An event of the kernel in words (the catalog's kinds, module doc)."""
    k, code, sensor_index, fault_code, a, b, c, d = event
    unit = int(rows.unit[k])
    unit_id, strain, time_us, kind = unit_ids[unit], strains[unit], int(rows.time_us[k]), KINDS[code]
    if kind in ("sensor_fault", "sensor_ok"):
        sensor, fault = SENSOR_NAMES[sensor_index], FAULTS[fault_code]
        words = fault_text(fault) if kind == "sensor_fault" else f"no longer {fault_text(fault)}"
        return Decision(unit_id, time_us, kind, f"{sensor}: {words}", {"sensor": sensor, "fault": fault})
    if kind in ("degas_on", "degas_off"):
        loss = float(oxygen_growth_loss(np.array(a), strain))
        return Decision(unit_id, time_us, kind, f"dissolved O2 {a:.1f} mg/L costs {loss:.0%} of growth",
                        {"do_mg_per_l": float(a), "growth_loss": loss})  # fmt: skip
    if kind in ("temperature_alarm", "temperature_ok"):
        temperatures = np.array([a, b])  # the robust values (module doc), NaN where the row had none
        losses = temperature_growth_loss(temperatures, strain)
        worst = int(np.nanargmax(np.where(np.isnan(losses), -np.inf, losses)))
        value, loss = float(temperatures[worst]), float(losses[worst])
        return Decision(unit_id, time_us, kind, f"temperature {value:.1f} °C costs {loss:.0%} of growth (optimum "
                        f"{strain.t_opt_c:.0f} °C)", {"temperature_c": value, "growth_loss": loss})  # fmt: skip
    biomass, rate = float(rows.estimates[k, 0]), float(rows.estimates[k, 2])
    if kind == "harvest_ready":
        optimum = d if math.isfinite(d) else biomass
        fraction = float(np.clip(1.0 - optimum / biomass, 0.0, 0.9))
        fraction = fraction if fraction > 0.0 else policy.harvest.fraction
        params = {"fraction": round(fraction, 3), "biomass_g_per_l": biomass, "daily_growth_per_d": 24 * a,
                  "growth_rate_per_h": rate}  # fmt: skip
        return Decision(unit_id, time_us, kind, f"growth has stopped: {24 * a:+.3f} ± {24 * b:.3f} per day over the "
                        f"last {c:.0f} h at {biomass:.2f} g/L", params)  # fmt: skip
    if d > 0.0:
        return Decision(unit_id, time_us, kind, f"harvested or diluted ({d:.0%} removed): the advice starts "
                        "again", {"fraction": float(d)})  # fmt: skip
    return Decision(unit_id, time_us, kind, f"growing again: {24 * a:+.3f} ± {24 * b:.3f} per day over the last "
                    f"{c:.0f} h", {"daily_growth_per_d": 24 * a})  # fmt: skip


def decide_unit(unit_id: str, strain: Strain, time_us: np.ndarray, readings: dict[str, np.ndarray],
                estimates: np.ndarray | None = None, policy: DecisionPolicy | None = None,
                ) -> tuple[list[Decision], Advice]:  # fmt: skip
    """One unit's whole record from a fresh state (``algaflow fuse``, tests): :func:`decide` on a batch of one.
    ``readings``: sensor → values at ``time_us`` (NaN where none); ``estimates``: (rows, 5) as
    :class:`DecisionRows` has them."""
    policy = policy or DecisionPolicy()
    state = DecisionState.empty(policy)
    state.add_unit(strain, policy)
    decisions, _, advice = decide(state, policy, DecisionRows.of_unit(0, time_us, readings, estimates), [unit_id],
                                  [strain])  # fmt: skip
    return decisions, advice
