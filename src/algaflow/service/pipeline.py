"""The live pipeline: every stored frame advances its unit's estimator; estimates and decisions are stored
and decisions published back to the unit.

Per unit (its registered metadata: ``strain``, ``volume_l``, ``sensors``):

- biomass and growth rate: the growth chain (fusion.online) on the unit's biomass sensor, the first of
  fusion.estimator.BIOMASS_SENSORS it has, with that sensor's factor (``sensor_growth_model``): the newest
  stored calibration curve for that sensor and the unit's strain in ``calibrations`` (``algaflow calibrate
  --store``) when there is one, with its slope's uncertainty added to the biomass variance, else the strain's
  catalog slope; the curve is chosen when the unit's chain starts. A harvest or dilution event removes its
  fraction just before the first sample at or after its time; a dry-weight sample (event ``dry_weight_sample``)
  is a factor on X at the first sample at or after its time. One that comes late (at or before the unit's
  last processed sample, as lab results do) makes the unit's chain start afresh and replay its stored record
  with it, rewriting its estimates; decisions already taken stand, later ones follow the corrected chain;
- CO2 captured: fusion.carbon from running totals (initial biomass, Σ f X(t_h⁻));
- decisions, on each change of a flag: ``harvest_ready`` / ``harvest_clear`` (control.harvest: P(μ < θ)
  with hysteresis), ``degas_on`` / ``degas_off`` (control.alarms on the highest DO reading),
  ``temperature_alarm`` / ``temperature_ok`` (control.alarms on the tank or tube temperature).

Frames of a unit at or before the last time it processed are stored but not processed again (resends,
replays). A stored record the pipeline cannot use (an event its kind's table refuses, a reading that is not
finite or whose time is before 2000 or in the future, unreadable unit metadata, a batch it fails on) is
quarantined (service.quarantine): kept, listed for an admin, skipped; nothing stored stops the pipeline.

Work is bounded: ``submit`` blocks while ``max_backlog_readings`` readings wait (one batch is always
admitted), so ingest acknowledges later instead of growing memory (back-pressure).

The state (the chains' arrays and the per-unit totals) is checkpointed in the store every
``checkpoint_every_s``; after a restart the pipeline loads it and replays from the store what each unit
received after its checkpointed time, so the state is as if the service had never stopped.
"""

from __future__ import annotations

import functools
import io
import itertools
import json
import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from algaflow.catalog import SENSORS, load_strain
from algaflow.catalog.events import EventParamsError, check_params
from algaflow.catalog.frames import EARLIEST, FUTURE_SLACK, GOOD
from algaflow.control.alarms import AlarmPolicy, alarm_flags, oxygen_growth_loss, temperature_growth_loss
from algaflow.control.harvest import HarvestPolicy, growth_stopped_probability, harvest_ready, recommended_fraction
from algaflow.fusion.calibration import BiomassCalibration, latest_biomass_calibration, load_biomass_calibration
from algaflow.fusion.carbon import co2_from_totals
from algaflow.fusion.estimator import BIOMASS_SENSORS, sensor_growth_model
from algaflow.fusion.online import OnlineGrowthFilter, StateFormatError, growth_rate_and_biomass
from algaflow.service.config import PipelineSettings
from algaflow.service.quarantine import Quarantine
from algaflow.store import Decision, ReadingBatch, Store, StoredEvent
from algaflow.store.base import ESTIMATE_COLUMNS, to_time_us

log = logging.getLogger("algaflow.pipeline")
strain_of = functools.cache(load_strain)
_load_curve = functools.lru_cache(maxsize=256)(load_biomass_calibration)  # stored versions never change
HOUR_US = 3_600_000_000
DO_SENSORS = ("do_tank", "do_tube")
TEMPERATURE_SENSORS = ("temp_tank", "temp_tube")
WATCHED = (*BIOMASS_SENSORS, *DO_SENSORS, *TEMPERATURE_SENSORS)
DILUTING_EVENTS = ("harvest", "dilution")
DRY_WEIGHT_SD = SENSORS["dry_weight"].noise_sd  # g/L
EARLIEST_US = to_time_us(EARLIEST)
SLACK_US = int(FUTURE_SLACK.total_seconds() * 1e6)


def now_us() -> int:
    return int(time.time() * 1e6)


def place_pending(pending: list[tuple[int, float]],
                  sample_times_us: np.ndarray) -> tuple[np.ndarray, np.ndarray, list[tuple[int, float]]]:  # fmt: skip
    """Each pending (time, value) on the first sample at or after its time: the samples' indices and the
    values, in the pending order, and those after the last sample, which stay pending."""
    times = np.array([at for at, _ in pending], dtype=np.int64)
    values = np.array([value for _, value in pending], dtype=float)
    index = np.searchsorted(sample_times_us, times, side="left")
    placed = index < sample_times_us.size
    return index[placed], values[placed], [item for item, now in zip(pending, placed, strict=True) if not now]


STATE_NAME = "live_pipeline"
DEFAULT_VOLUME_L = 80.0


@dataclass(slots=True)
class UnitTrack:
    """One unit's running totals and flags beside its chain."""

    index: int  # in the OnlineGrowthFilter; -1 until the unit has a biomass sensor
    sensor: str | None
    strain: str
    volume_l: float
    last_time_us: int = -(2**62)
    pending_dilution: list[tuple[int, float]] = field(default_factory=list)  # (time_us, fraction)
    pending_dry_weight: list[tuple[int, float]] = field(default_factory=list)  # (time_us, g/L)
    initial: tuple[float, float] | None = None  # X(t₀), its sd
    last_biomass: tuple[float, float] | None = None
    harvested: float = 0.0  # Σ f X(t_h⁻), g/L
    harvested_variance: float = 0.0
    best_productivity: float = -np.inf  # highest μ X so far, and the X where it was (recommended fraction)
    best_biomass: float = np.nan
    harvest_ready: bool = False
    degas: bool = False
    temperature_alarm: bool = False
    calibration: str | None = None  # file name of the stored curve the chain uses; None: the catalog slope


def watched_table(readings: ReadingBatch) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The watched sensors' readings as rows of (unit, time) sorted by unit then time, a column per
    ``WATCHED`` sensor (NaN where absent): all values, and the good ones only; then the rows' units and times."""
    codes, names = pd.factorize(readings.sensor)  # a few distinct names among many readings
    sensor_index = np.array([WATCHED.index(name) if name in WATCHED else -1 for name in names], dtype=np.int64)[codes]
    keep = sensor_index >= 0
    if not keep.any():
        empty = np.empty((0, len(WATCHED)))
        return empty, empty, np.empty(0, dtype=object), np.empty(0, dtype=np.int64)
    unit_codes, unit_names = pd.factorize(readings.unit_id[keep])
    times, values = readings.time_us[keep], readings.value[keep]
    good, sensor_index = readings.quality[keep] == GOOD, sensor_index[keep]
    order = np.lexsort((times, unit_codes))
    unit_codes, times = unit_codes[order], times[order]
    starts = np.r_[True, (unit_codes[1:] != unit_codes[:-1]) | (times[1:] != times[:-1])]
    row = np.cumsum(starts) - 1
    raw = np.full((int(starts.sum()), len(WATCHED)), np.nan)
    raw[row, sensor_index[order]] = values[order]
    good_values = np.full_like(raw, np.nan)
    ok = good[order]
    good_values[row[ok], sensor_index[order][ok]] = values[order][ok]
    return raw, good_values, np.asarray(unit_names)[unit_codes[starts]], times[starts]


class LivePipeline:
    """Module doc. ``publish(unit_id, message)`` sends a decision to the unit (the MQTT bridge's commands);
    ``calibrations`` is the folder of stored calibration curves (service.config.calibrations_path)."""

    def __init__(self, store: Store, settings: PipelineSettings | None = None,
                 publish: Callable[[str, dict], None] | None = None,
                 calibrations: Path | None = None) -> None:  # fmt: skip
        self.store = store
        self.calibrations = calibrations
        self.settings = settings or PipelineSettings()
        self.publish = publish
        self.harvest_policy = HarvestPolicy()
        self.alarm_policy = AlarmPolicy(self.settings.alarm_loss_on, self.settings.alarm_loss_off)
        self.chains = OnlineGrowthFilter()
        self.tracks: dict[str, UnitTrack] = {}
        self._metadata: dict[str, dict] = {}  # the store's units, as last read
        self._lock = threading.Lock()
        self._last_checkpoint = time.monotonic()
        self.frames_processed = 0
        self.quarantine = Quarantine(store)
        self._queue: queue.Queue[tuple[ReadingBatch, Sequence[StoredEvent]] | None] = queue.Queue()
        self._room = threading.Condition()
        self.queued_readings = 0  # readings submitted and not yet processed (bounded: module doc)
        self.restoring = False
        self._late_dry_weight: set[str] = set()  # units whose chain replays after this batch
        self._replaying = False
        self._worker: threading.Thread | None = None

    # ---- running beside the ingest path -----------------------------------------------------------------------
    def start(self) -> None:
        """Process submitted batches in a background thread, so that ingest acknowledges as soon as the store
        has the frames (a crash loses nothing: the replay of :meth:`restore` picks up what was not processed)."""
        if self._worker is None:
            self._worker = threading.Thread(target=self._work, name="algaflow-pipeline", daemon=True)
            self._worker.start()

    def submit(self, readings: ReadingBatch, events: Sequence[StoredEvent]) -> None:
        """Queue stored readings and events for the worker (or process them now when it is not started); blocks
        while ``max_backlog_readings`` readings wait (module doc: back-pressure)."""
        if self._worker is None:
            self.process(readings, events)
            return
        size = len(readings) + len(events)
        with self._room:
            self._room.wait_for(lambda: self.queued_readings == 0
                                or self.queued_readings + size <= self.settings.max_backlog_readings)  # fmt: skip
            self.queued_readings += size
        self._queue.put((readings, events))

    def wait(self) -> None:
        """Block until everything submitted has been processed."""
        self._queue.join()

    @property
    def backlog(self) -> int:
        return self._queue.qsize()

    def stop(self) -> None:
        """Finish the queue, stop the worker and checkpoint."""
        if self._worker is not None:
            self._queue.put(None)
            self._worker.join()
            self._worker = None
        self.checkpoint()

    def _work(self) -> None:
        while True:
            item = self._queue.get()
            try:
                if item is None:
                    return
                if callable(item):
                    item()
                else:
                    self.process_safely(*item)
            finally:
                if isinstance(item, tuple):
                    with self._room:
                        self.queued_readings -= len(item[0]) + len(item[1])
                        self._room.notify_all()
                self._queue.task_done()

    def process_safely(self, readings: ReadingBatch, events: Sequence[StoredEvent]) -> None:
        """:meth:`process`, and where it fails, each unit of the batch alone: a unit that fails again has its
        batch quarantined (the error), and the others go on (a unit the failed attempt had already advanced
        skips those rows, as it skips any resent frame)."""
        try:
            self.process(readings, events)
            return
        except Exception:
            log.exception("live pipeline failed on a batch; taking its units one by one")
        for unit_id in sorted(set(readings.unit_id.tolist()) | {event.unit_id for event in events}):
            mine = readings.unit_id == unit_id
            unit_readings = ReadingBatch(readings.unit_id[mine], readings.sensor[mine], readings.time_us[mine],
                                         readings.value[mine], readings.quality[mine])  # fmt: skip
            unit_events = [event for event in events if event.unit_id == unit_id]
            try:
                self.process(unit_readings, unit_events)
            except Exception as error:
                times = unit_readings.time_us
                self.quarantine.add(unit_id, "batch", "", int(times.min()) if times.size else 0,
                                    f"the pipeline failed on it: {type(error).__name__}: {error}",
                                    f"{len(unit_readings)} readings, {len(unit_events)} events")  # fmt: skip

    # ---- units ------------------------------------------------------------------------------------------------
    def _track(self, unit_id: str, sensors_seen: set[str]) -> UnitTrack:
        track = self.tracks.get(unit_id)
        if track is None:
            if unit_id not in self._metadata:  # read the registry again only for a unit not seen in it
                self._metadata = self.store.units()
            strain, volume_l, sensors = self._unit_metadata(unit_id, self._metadata.get(unit_id))
            track = UnitTrack(index=-1, sensor=None, strain=strain, volume_l=volume_l)
            declared = [s for s in BIOMASS_SENSORS if s in sensors]
            if declared:
                track.sensor = declared[0]
            self.tracks[unit_id] = track
        if track.index < 0:
            if track.sensor is None:
                seen = [s for s in BIOMASS_SENSORS if s in sensors_seen]
                track.sensor = seen[0] if seen else None
            if track.sensor is not None:
                found = latest_biomass_calibration(self.calibrations, track.sensor, track.strain)
                track.calibration = None if found is None else found[1].name
                curve = None if found is None else found[0]
                track.index = self.chains.add_unit(sensor_growth_model(track.sensor, load_strain(track.strain),
                                                                       calibration=curve))  # fmt: skip
        return track

    def _unit_metadata(self, unit_id: str, metadata: object) -> tuple[str, float, set[str]]:
        """Strain, volume (L) and declared sensors from a unit's registered metadata; what cannot be read is
        quarantined and replaced by the default (``[pipeline] strain``, 80 L, none declared)."""
        problems = []
        metadata = metadata if isinstance(metadata, dict) else {}
        strain = metadata.get("strain") or self.settings.strain
        try:
            strain_of(strain)
        except (KeyError, TypeError, ValueError) as error:
            problems.append(f"strain {str(strain)[:64]!r}: {error}")
            strain = self.settings.strain
        volume = metadata.get("volume_l") or DEFAULT_VOLUME_L
        if isinstance(volume, bool) or not isinstance(volume, int | float) or not 0.0 < volume < 1e9:
            problems.append(f"volume_l {str(volume)[:64]!r} is not a volume in litres")
            volume = DEFAULT_VOLUME_L
        sensors = metadata.get("sensors") or []
        if not isinstance(sensors, list):
            problems.append("sensors is not a list")
            sensors = []
        if problems:
            self.quarantine.add(unit_id, "metadata", "", 0, "; ".join(problems) + "; defaults used")
        return str(strain), float(volume), {s for s in sensors if isinstance(s, str)}

    def _usable(self, readings: ReadingBatch, events: Sequence[StoredEvent]
                ) -> tuple[ReadingBatch, list[StoredEvent]]:  # fmt: skip
        """What of a batch the estimator may use; the rest is quarantined (module doc). Readings: a finite
        value at a time in [2000-01-01, now + 5 min]; events: their kind's parameters and such a time."""
        latest = now_us() + SLACK_US
        usable_events = []
        for event in events:
            reason = None
            if not EARLIEST_US <= event.time_us <= latest:
                reason = "its time is before 2000 or in the future"
            else:
                try:
                    check_params(event.kind, event.params)
                except EventParamsError as error:
                    reason = str(error)
            if reason is None:
                usable_events.append(event)
            else:
                self.quarantine.add(event.unit_id, "event", event.kind, event.time_us, reason,
                                    repr(event.params))  # fmt: skip
        times = readings.time_us
        bad = ~np.isfinite(readings.value) | (times < EARLIEST_US) | (times > latest)
        if not bad.any():
            return readings, usable_events
        for unit_id in sorted(set(readings.unit_id[bad].tolist())):
            mine = bad & (readings.unit_id == unit_id)
            self.quarantine.add(unit_id, "readings", ",".join(sorted(set(readings.sensor[mine].tolist())))[:64],
                                int(times[mine].min()), f"{int(mine.sum())} readings not finite or at a time "
                                "before 2000 or in the future", f"times {int(times[mine].min())} .. "
                                f"{int(times[mine].max())} µs")  # fmt: skip
        keep = ~bad
        return ReadingBatch(readings.unit_id[keep], readings.sensor[keep], readings.time_us[keep],
                            readings.value[keep], readings.quality[keep]), usable_events

    def calibration_in_use(self, unit_id: str) -> BiomassCalibration | None:
        """The stored curve unit ``unit_id``'s chain uses (None: the strain's catalog slope, or no chain yet)."""
        track = self.tracks.get(unit_id)
        if track is None or track.calibration is None or self.calibrations is None:
            return None
        return _load_curve(self.calibrations / track.calibration)

    # ---- processing ---------------------------------------------------------------------------------------------
    def process(self, readings: ReadingBatch, events: Sequence[StoredEvent]) -> list[Decision]:
        """Advance the units in ``readings`` (module doc); returns the decisions taken (stored and published)."""
        with self._lock:
            decisions, estimates = self._process(readings, events)
            if estimates:
                self.store.write_estimates(pd.DataFrame(estimates, columns=["unit_id", *ESTIMATE_COLUMNS]))
            for unit_id in sorted(self._late_dry_weight):
                self._replay_unit(unit_id)
            self._late_dry_weight.clear()
            self.store.write_decisions(decisions)
            if time.monotonic() - self._last_checkpoint >= self.settings.checkpoint_every_s:
                self._checkpoint()
        if self.publish is not None:
            for decision in decisions:
                try:
                    self.publish(decision.unit_id, {"kind": decision.kind, "time_us": decision.time_us,
                                                    "reason": decision.reason, "params": decision.params})  # fmt: skip
                except Exception:  # a broker outage must not stop the pipeline; the decision is stored
                    log.exception("could not publish decision %s to %s", decision.kind, decision.unit_id)
        return decisions

    def _process(self, readings: ReadingBatch, events: Sequence[StoredEvent]) -> tuple[list[Decision], list[tuple]]:
        """Decisions, and estimate rows (unit_id, *ESTIMATE_COLUMNS). Each unit's new rows are handled as arrays:
        one chain update for every unit's samples, then per unit its estimates and flags along time."""
        readings, events = self._usable(readings, events)
        for event in events:
            if event.kind in DILUTING_EVENTS:
                track = self._track(event.unit_id, set())
                if event.time_us > track.last_time_us:
                    track.pending_dilution.append((int(event.time_us), float(event.params["fraction"])))
            elif event.kind == "dry_weight_sample":
                track = self._track(event.unit_id, set())
                if event.time_us > track.last_time_us:
                    track.pending_dry_weight.append((int(event.time_us), float(event.params["g_per_l"])))
                elif not self._replaying:
                    self._late_dry_weight.add(event.unit_id)
        if len(readings) == 0:
            return [], []
        raw_values, good_values, units, times = watched_table(readings)
        if units.size == 0:
            return [], []
        column = {name: k for k, name in enumerate(WATCHED)}
        segments: list[tuple[str, UnitTrack, int, int, slice]] = []  # unit, track, its new rows, its samples
        sample_rows: list[np.ndarray] = []
        sample_chains: list[np.ndarray] = []
        sample_dilutions: list[np.ndarray] = []
        sample_dry_weights: list[np.ndarray] = []
        sample_values: list[np.ndarray] = []
        samples = 0
        boundaries = np.flatnonzero(np.r_[True, units[1:] != units[:-1], True])
        for first, end in itertools.pairwise(boundaries.tolist()):
            unit_id = units[first]
            present = ~np.isnan(raw_values[first:end]).all(axis=0)
            track = self._track(unit_id, {name for name, k in column.items() if present[k]})
            first += int(np.searchsorted(times[first:end], track.last_time_us, side="right"))  # older: done before
            if first == end:
                continue
            sensor_column = column.get(track.sensor, -1) if track.sensor is not None else -1
            rows = np.empty(0, dtype=np.int64)
            if track.index >= 0 and sensor_column >= 0:
                rows = first + np.flatnonzero(~np.isnan(raw_values[first:end, sensor_column]))
                sample_rows.append(rows)
                sample_chains.append(np.full(rows.size, track.index))
                sample_values.append(raw_values[rows, sensor_column])
                sample_dilutions.append(self._dilutions(track, times[rows]))
                sample_dry_weights.append(self._dry_weights(track, times[rows]))
            segments.append((unit_id, track, first, end, slice(samples, samples + rows.size)))
            samples += rows.size
            track.last_time_us = int(times[end - 1])
        self.frames_processed += sum(end - first for _, _, first, end, _ in segments)
        if samples:
            all_rows = np.concatenate(sample_rows)
            dilution = np.concatenate(sample_dilutions)
            mean, cov, _ = self.chains.update(np.concatenate(sample_chains), times[all_rows] / HOUR_US,
                                              np.concatenate(sample_values), dilution,
                                              np.concatenate(sample_dry_weights), DRY_WEIGHT_SD)  # fmt: skip
        do_columns = [column[s] for s in DO_SENSORS]
        temperature_columns = [column[s] for s in TEMPERATURE_SENSORS]
        decisions: list[Decision] = []
        estimates: list[tuple] = []
        for unit_id, track, first, end, sampled in segments:
            strain = strain_of(track.strain)
            unit_decisions = self._alarms(unit_id, track, times[first:end], good_values[first:end, do_columns],
                                          good_values[first:end, temperature_columns], strain)  # fmt: skip
            if sampled.stop > sampled.start:
                unit_estimates = self._estimates(track, times[all_rows[sampled]], mean[sampled], cov[sampled],
                                                 dilution[sampled], strain)  # fmt: skip
                if unit_estimates is not None:
                    estimates += [(unit_id, *row) for row in zip(*unit_estimates.values(), strict=True)]
                    unit_decisions += self._harvest(unit_id, track, unit_estimates)
            unit_decisions.sort(key=lambda decision: decision.time_us)  # stable: alarms before harvest advice
            decisions += unit_decisions
        return decisions, estimates

    @staticmethod
    def _dilutions(track: UnitTrack, sample_times_us: np.ndarray) -> np.ndarray:
        """Per sample, 1 − Π(1 − f) of the pending dilutions that fall on it: each at the first sample at or
        after its time (then no longer pending); those after the last sample stay pending."""
        index, fractions, track.pending_dilution = place_pending(track.pending_dilution, sample_times_us)
        survival = np.ones(sample_times_us.size)
        np.multiply.at(survival, index, 1.0 - fractions)
        return 1.0 - survival

    @staticmethod
    def _dry_weights(track: UnitTrack, sample_times_us: np.ndarray) -> np.ndarray:
        """Per sample, the pending dry weight that falls on it (NaN where none; the last recorded of several),
        placed as dilutions are."""
        index, grams, track.pending_dry_weight = place_pending(track.pending_dry_weight, sample_times_us)
        placed = np.full(sample_times_us.size, np.nan)
        for k, value in zip(index.tolist(), grams.tolist(), strict=True):
            placed[k] = value
        return placed

    def _estimates(self, track: UnitTrack, times_us: np.ndarray, mean: np.ndarray, cov: np.ndarray,
                   dilution: np.ndarray, strain) -> dict[str, np.ndarray] | None:  # fmt: skip
        """One unit's estimate columns (``ESTIMATE_COLUMNS``) at its samples since the chain started; the running
        totals (initial and harvested biomass, last biomass) move on to the last sample."""
        started = ~np.isnan(mean[:, 0])
        if not started.any():
            return None
        columns = {name: values[started] for name, values in growth_rate_and_biomass(mean, cov).items()}
        biomass, biomass_sd, dilution = columns["biomass_g_per_l"], columns["biomass_sd"], dilution[started]
        if track.calibration is not None and self.calibrations is not None:  # the curve's own uncertainty
            curve = _load_curve(self.calibrations / track.calibration)
            biomass_sd = np.sqrt(biomass_sd**2 + curve.biomass_variance(biomass))
        if track.initial is None:
            track.initial = (float(biomass[0]), float(biomass_sd[0]))
        before, before_sd = track.last_biomass if track.last_biomass is not None else (np.nan, np.nan)
        before = np.r_[before, biomass[:-1]]  # X(t_h⁻): the estimate at the previous sample
        before_sd = np.r_[before_sd, biomass_sd[:-1]]
        removed = (dilution > 0.0) & ~np.isnan(before)
        harvested = track.harvested + np.cumsum(np.where(removed, dilution * before, 0.0))
        harvested_variance = track.harvested_variance + np.cumsum(np.where(removed, (dilution * before_sd) ** 2, 0.0))
        track.harvested, track.harvested_variance = float(harvested[-1]), float(harvested_variance[-1])
        track.last_biomass = (float(biomass[-1]), float(biomass_sd[-1]))
        co2, co2_sd = co2_from_totals(biomass, biomass_sd, np.array(track.initial[0]), np.array(track.initial[1]),
                                      harvested, harvested_variance, track.volume_l,
                                      strain.carbon_fraction)  # fmt: skip
        rate, rate_sd = columns["growth_rate_per_h"], columns["growth_rate_sd"]
        probability = growth_stopped_probability(rate, rate_sd, self.harvest_policy.growth_threshold_per_h)
        ready = harvest_ready(probability[None, :], biomass[None, :], self.harvest_policy,
                              np.array([track.harvest_ready]))[0]  # fmt: skip
        return {"time_us": times_us[started], "biomass_g_per_l": biomass, "biomass_sd": biomass_sd,
                "growth_rate_per_h": rate, "growth_rate_sd": rate_sd, "co2_captured_g": co2, "co2_captured_sd": co2_sd,
                "harvest_ready": ready}  # fmt: skip

    def _harvest(self, unit_id: str, track: UnitTrack, estimates: dict[str, np.ndarray]) -> list[Decision]:
        """A decision at each change of the harvest_ready flag; the best productivity μ X so far (and its X, for
        the recommended fraction) moves on sample by sample."""
        decisions = []
        previous = track.harvest_ready
        for time_us, biomass, rate, rate_sd, ready in zip(
                estimates["time_us"].tolist(), estimates["biomass_g_per_l"].tolist(),
                estimates["growth_rate_per_h"].tolist(), estimates["growth_rate_sd"].tolist(),
                estimates["harvest_ready"].tolist(), strict=True):  # fmt: skip
            if rate * biomass > track.best_productivity:
                track.best_productivity, track.best_biomass = rate * biomass, biomass
            if ready == previous:
                continue
            previous = ready
            if not ready:
                decisions.append(Decision(unit_id, time_us, "harvest_clear", f"growth rate {rate:.4f} ± {rate_sd:.4f} "
                                          "1/h is back above the harvest threshold", {"growth_rate_per_h": rate}))
                continue
            fraction = float(recommended_fraction(np.array([track.best_biomass, biomass]),
                                                  np.array([track.best_productivity / track.best_biomass, rate]))[-1])
            fraction = fraction if fraction > 0.0 else self.harvest_policy.fraction
            decisions.append(Decision(unit_id, time_us, "harvest_ready",
                                      f"growth has stopped: μ = {rate:.4f} ± {rate_sd:.4f} 1/h at {biomass:.2f} g/L",
                                      {"fraction": round(fraction, 3), "biomass_g_per_l": biomass,
                                       "growth_rate_per_h": rate}))  # fmt: skip
        track.harvest_ready = previous
        return decisions

    def _alarms(self, unit_id: str, track: UnitTrack, times_us: np.ndarray, do_values: np.ndarray,
                temperatures: np.ndarray, strain) -> list[Decision]:  # fmt: skip
        """A decision at each change of the degas flag (the highest DO reading of a row) and of the temperature
        alarm (the temperature reading that costs the most growth); rows without a reading keep the flag."""
        decisions = []
        do = np.fmax.reduce(do_values, axis=1)  # NaN only where the row has no DO reading
        loss = oxygen_growth_loss(do, strain)
        degas = alarm_flags(loss, track.degas, self.alarm_policy)
        for k in np.flatnonzero(degas != np.r_[track.degas, degas[:-1]]).tolist():
            kind = "degas_on" if degas[k] else "degas_off"
            decisions.append(Decision(unit_id, int(times_us[k]), kind, f"dissolved O2 {do[k]:.1f} mg/L costs "
                                      f"{loss[k]:.0%} of growth", {"do_mg_per_l": float(do[k]),
                                                                   "growth_loss": float(loss[k])}))  # fmt: skip
        track.degas = bool(degas[-1])
        losses = temperature_growth_loss(temperatures, strain)
        worst = np.where(np.isnan(losses), -np.inf, losses).argmax(axis=1)
        rows = np.arange(worst.size)
        loss, temperature = losses[rows, worst], temperatures[rows, worst]  # NaN where the row has none
        alarm = alarm_flags(loss, track.temperature_alarm, self.alarm_policy)
        for k in np.flatnonzero(alarm != np.r_[track.temperature_alarm, alarm[:-1]]).tolist():
            kind = "temperature_alarm" if alarm[k] else "temperature_ok"
            decisions.append(Decision(unit_id, int(times_us[k]), kind, f"temperature {temperature[k]:.1f} °C costs "
                                      f"{loss[k]:.0%} of growth (optimum {strain.t_opt_c:.0f} °C)",
                                      {"temperature_c": float(temperature[k]), "growth_loss": float(loss[k])}))
        track.temperature_alarm = bool(alarm[-1])
        return decisions

    def _replay_unit(self, unit_id: str) -> None:
        """Start the unit's chain afresh and run its stored record through it again (its readings and events,
        a late dry weight among them), rewriting its estimates; the decisions of the replay are not stored
        (those taken stand), the unit's flags are left as the replay ends."""
        track = self.tracks.get(unit_id)
        if track is None or track.index < 0:
            return
        self.chains.reset_unit(track.index)
        self.tracks[unit_id] = UnitTrack(index=track.index, sensor=track.sensor, strain=track.strain,
                                         volume_l=track.volume_l, calibration=track.calibration)  # fmt: skip
        batch = stored_batch(unit_id, self.store.readings(unit_id, list(WATCHED)))
        events = stored_events(unit_id, self.store.events(unit_id))
        self._replaying = True
        try:
            _, estimates = self._process(batch, events)
        finally:
            self._replaying = False
        if estimates:
            self.store.write_estimates(pd.DataFrame(estimates, columns=["unit_id", *ESTIMATE_COLUMNS]))
        log.info("unit %s: a late dry weight; its chain replayed %d readings", unit_id, len(batch))

    # ---- state ------------------------------------------------------------------------------------------------
    def _checkpoint(self) -> None:
        buffer = io.BytesIO()
        tracks = {unit: asdict(track) for unit, track in self.tracks.items()}
        for track in tracks.values():
            track["best_productivity"] = float(track["best_productivity"]) if np.isfinite(
                track["best_productivity"]) else None  # fmt: skip
            track["best_biomass"] = None if np.isnan(track["best_biomass"]) else track["best_biomass"]
        np.savez(buffer, tracks=np.frombuffer(json.dumps(tracks).encode(), dtype=np.uint8), **self.chains.state())
        self.store.save_state(STATE_NAME, buffer.getvalue())
        self._last_checkpoint = time.monotonic()

    def checkpoint(self) -> None:
        """Save the state now (also done every ``checkpoint_every_s`` while processing)."""
        with self._lock:
            self._checkpoint()

    def _load_state(self, blob: bytes) -> tuple[OnlineGrowthFilter, dict[str, UnitTrack]] | None:
        """The chains and tracks of a saved state; None for an older format (then everything is replayed)."""
        with np.load(io.BytesIO(blob)) as saved:
            try:
                chains = OnlineGrowthFilter.from_state({name: saved[name] for name in saved.files if name != "tracks"})
            except StateFormatError as error:
                log.warning("pipeline checkpoint not used (%s): replaying every stored reading", error)
                return None
            saved_tracks = json.loads(saved["tracks"].tobytes().decode())
        tracks = {}
        for unit, values in saved_tracks.items():
            values["pending_dilution"] = [tuple(p) for p in values["pending_dilution"]]
            values["pending_dry_weight"] = [tuple(p) for p in values.get("pending_dry_weight", [])]
            values["initial"] = None if values["initial"] is None else tuple(values["initial"])
            values["last_biomass"] = None if values["last_biomass"] is None else tuple(values["last_biomass"])
            values["best_productivity"] = (-np.inf if values["best_productivity"] is None
                                           else values["best_productivity"])  # fmt: skip
            values["best_biomass"] = np.nan if values["best_biomass"] is None else values["best_biomass"]
            tracks[unit] = UnitTrack(**values)
        return chains, tracks

    def restore(self) -> int:
        """Load the last checkpoint and replay what the store received after it; returns the readings replayed.
        A state that cannot be loaded is quarantined and everything is replayed; a unit whose replay fails is
        quarantined and the others go on."""
        self.restoring = True
        try:
            return self._restore()
        finally:
            self.restoring = False

    def _restore(self) -> int:
        blob = self.store.load_state(STATE_NAME)
        with self._lock:
            if blob is not None:
                try:
                    loaded = self._load_state(blob)
                except Exception as error:
                    loaded = None
                    self.quarantine.add("", "state", STATE_NAME, 0, f"the saved pipeline state cannot be loaded "
                                        f"({type(error).__name__}: {error}); every stored reading is replayed")
                if loaded is not None:
                    self.chains, self.tracks = loaded
        replayed = 0
        for unit_id in self.store.units():
            try:
                track = self.tracks.get(unit_id)
                start = None if track is None else track.last_time_us + 1
                stored = self.store.readings(unit_id, list(WATCHED), start_us=start)
                events = self.store.events(unit_id, start_us=start)
                if stored.empty and events.empty:
                    continue
                batch = stored_batch(unit_id, stored)
                self.process(batch, stored_events(unit_id, events))
                replayed += len(batch)
            except Exception as error:
                self.quarantine.add(unit_id, "batch", "", 0, f"replaying its stored record failed: "
                                    f"{type(error).__name__}: {error}")  # fmt: skip
        return replayed

    def restore_in_background(self) -> None:
        """Run :meth:`restore` on the worker before anything submitted after this call (start the worker first):
        HTTP and MQTT take frames meanwhile, and those wait in the queue behind the replay."""
        self.restoring = True

        def run() -> None:
            try:
                log.info("live pipeline restored (%d readings replayed)", self.restore())
            except Exception:  # the store is down: the pipeline runs on from an empty state; nothing is lost
                log.exception("restoring the live pipeline failed")

        self._queue.put(run)


def stored_batch(unit_id: str, stored: pd.DataFrame) -> ReadingBatch:
    """One unit's stored readings (the store's table) as a batch in time order."""
    stored = stored.sort_values(["time_us", "sensor"], kind="stable")
    return ReadingBatch(np.full(len(stored), unit_id, dtype=object), stored.sensor.to_numpy(),
                        stored.time_us.to_numpy(), stored.value.to_numpy(), stored.quality.to_numpy())  # fmt: skip


def stored_events(unit_id: str, table: pd.DataFrame) -> list[StoredEvent]:
    """One unit's stored events as the pipeline takes them; params kept as stored (the pipeline checks them)."""
    return [StoredEvent(unit_id, int(e.time_us), str(e.kind), e.params)
            for e in table.itertuples(index=False)]  # fmt: skip
