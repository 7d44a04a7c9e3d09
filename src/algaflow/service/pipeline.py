"""The live pipeline: every stored frame advances its unit's estimator; estimates and decisions are stored
and decisions published back to the unit.

Per unit (its registered metadata: ``strain``, ``volume_l``, ``sensors``):

- biomass and growth rate: the growth chain (fusion.online) on the unit's biomass sensor, the first of
  fusion.estimator.BIOMASS_SENSORS it has, its stuck readings withheld (fusion.sensor_health.stuck_samples,
  the run carried from frame to frame); where the unit reads its incident light (``par_surface``, declared in
  its metadata or seen by the time its chain starts), μ informed by the reactor model as fusion.estimator does
  it: a first-pass chain on the probe alone gives the biomass that shades the tubes, the model-input sensors'
  running medians (fusion.online_rate) give μ_model, and its increments are the main chain's known input
  (geometry: the lab tubular loop, as ``algaflow fuse``'s default). The chain has that sensor's factor
  (``sensor_growth_model``): the newest
  stored calibration curve for that sensor and the unit's strain in ``calibrations`` (``algaflow calibrate
  --store``) when there is one, with its slope's uncertainty added to the biomass variance, else the strain's
  catalog slope; the curve is chosen when the unit's chain starts. A harvest or dilution event removes its
  fraction just before the first sample at or after its time; a dry weight (event ``dry_weight_sample``, or a
  ``dry_weight`` reading) is a factor on X at the first sample at or after its time. One that comes late (at
  or before the unit's last processed sample, as lab results do) is absorbed by fixed-lag re-filtering
  (service.pipeline_replay: the chain goes back to its saved point before the sample, at a cost set by how
  late it is, not by the unit's history); one older than ``late_sample_lag_h`` is quarantined. The chains
  are advanced by service.pipeline_chains;
- a second biomass probe (another of BIOMASS_SENSORS the unit has): its own chain, and the main probe's causal
  drift test against it; where the two disagree, the estimate is the equal mixture of the two chains, as
  fusion.estimator gives it (service.pipeline_second). A probe the growth-limit test would set aside
  (fusion.growth_limit) is not set aside live yet: that test is not streamed;
- CO2 captured: fusion.carbon from running totals (initial biomass, Σ f X(t_h⁻));
- decisions: control.decisions.decide on every new row of every unit of the batch at once (its state arrays
  beside the chains): harvest advice on the daily net growth, DO and temperature alarms on robust readings,
  sensor faults (stuck, silent, out of range); the pipeline only moves data (store → chain → decide → store
  and publish).

Frames of a unit at or before the last time it processed are stored but not processed again (resends,
replays). A stored record the pipeline cannot use (an event its kind's table refuses, a reading that is not
finite or whose time is before 2000 or in the future, unreadable unit metadata, a batch it fails on) is
quarantined (service.quarantine): kept, listed for an admin, skipped; nothing stored stops the pipeline.

Work is bounded: ``submit`` blocks while ``max_backlog_readings`` readings wait (one batch is always
admitted), so ingest acknowledges later instead of growing memory (back-pressure).

The state (the chains' and the decisions' arrays and the per-unit totals: service.pipeline_state) is
checkpointed in the store every ``checkpoint_every_s``; after a restart the pipeline loads it and replays from
the store what each unit received after its checkpointed time (service.pipeline_replay), so the state is as if
the service had never stopped. This module is the orchestration: store → chains → decisions → store and
publish.
"""

from __future__ import annotations

import functools
import itertools
import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd

from algaflow.catalog import load_strain
from algaflow.catalog.events import EventParamsError, check_params
from algaflow.catalog.frames import EARLIEST, FUTURE_SLACK, GOOD
from algaflow.control.alarms import AlarmPolicy
from algaflow.control.decisions import (
    ESTIMATE_INPUTS,
    SENSOR_NAMES,
    Decision,
    DecisionPolicy,
    DecisionRows,
    DecisionState,
    decide,
)
from algaflow.fusion.calibration import BiomassCalibration
from algaflow.fusion.estimator import BIOMASS_SENSORS, sensor_growth_model
from algaflow.fusion.expected_rate import MODEL_INPUT_SENSORS, ReactorGeometry
from algaflow.fusion.growth_window import window_error_terms
from algaflow.fusion.online import OnlineGrowthFilter
from algaflow.fusion.online_rate import OnlineConditions
from algaflow.service.calibrations import latest_biomass_calibration, load_biomass_calibration
from algaflow.service.config import PipelineSettings
from algaflow.service.pipeline_chains import (
    ChainJob,
    advance_chains,
    estimate_columns,
    probe_point,
    set_probe_point,
    strain_of,
)
from algaflow.service.pipeline_replay import absorb_late, replay_stored
from algaflow.service.pipeline_second import SecondProbe, second_point, second_probe
from algaflow.service.pipeline_state import SNAPSHOT_EVERY_US, STATE_NAME, UnitTrack, read_state, state_blob
from algaflow.service.quarantine import Quarantine
from algaflow.store import ReadingBatch, Store, StoredEvent
from algaflow.store.base import ESTIMATE_COLUMNS, to_time_us

log = logging.getLogger("algaflow.pipeline")
_load_curve = functools.lru_cache(maxsize=256)(load_biomass_calibration)  # stored versions never change
HOUR_US = 3_600_000_000
WATCHED = SENSOR_NAMES  # every catalog sensor: the biomass chain's, and the rest for alarms and sensor faults
DILUTING_EVENTS = ("harvest", "dilution")
EARLIEST_US = to_time_us(EARLIEST)
SLACK_US = int(FUTURE_SLACK.total_seconds() * 1e6)


def now_us() -> int:
    return int(time.time() * 1e6)


DEFAULT_VOLUME_L = 80.0
PAR_COLUMN = MODEL_INPUT_SENSORS.index("par_surface")


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
        self.policy = DecisionPolicy(alarms=AlarmPolicy(self.settings.alarm_loss_on, self.settings.alarm_loss_off))
        self.chains = OnlineGrowthFilter()
        self.conditions = OnlineConditions()
        self.reactor = ReactorGeometry()  # the model's light response: the lab tubular loop, as `algaflow fuse`'s
        self.decisions = DecisionState.empty(self.policy)
        self._decided: list[tuple[str, object]] = []  # by decision index: the unit and its strain
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
        self._late: dict[str, int] = {}  # unit → the earliest late dry weight of this batch (µs)
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
            track = UnitTrack(index=-1, sensor=None, strain=strain, volume_l=volume_l,
                              informed="par_surface" in sensors)  # fmt: skip
            declared = [s for s in BIOMASS_SENSORS if s in sensors]
            if declared:
                track.sensor = declared[0]
            self.tracks[unit_id] = track
        if track.decisions < 0 or track.decisions >= len(self._decided):
            track.decisions = self.decisions.add_unit(strain_of(track.strain), self.policy)
            self._decided.append((unit_id, strain_of(track.strain)))
        if track.conditions < 0:
            track.conditions = self.conditions.add_unit()
        if track.index < 0:
            if track.sensor is None:
                seen = [s for s in BIOMASS_SENSORS if s in sensors_seen]
                track.sensor = seen[0] if seen else None
            if track.sensor is not None:
                found = latest_biomass_calibration(self.calibrations, track.sensor, track.strain)
                track.calibration = None if found is None else found[1].name
                curve = None if found is None else found[0]
                model = sensor_growth_model(track.sensor, load_strain(track.strain), calibration=curve)
                # The reactor model informs μ where the unit reads its light by the time its chain starts: a
                # first-pass chain on the probe alone gives the biomass that shades the tubes (fusion.estimator).
                track.informed = bool(track.informed or "par_surface" in sensors_seen
                                      or self.conditions.started[track.conditions, PAR_COLUMN])  # fmt: skip
                if track.informed:
                    track.first_pass = self.chains.add_unit(model)
                    model = model.informed()
                track.index = self.chains.add_unit(model)
        if track.index >= 0 and track.second is None:
            others = [s for s in BIOMASS_SENSORS if s != track.sensor and s in sensors_seen]
            if others:  # the second probe: its own chain, the estimator's alternative (service.pipeline_second)
                track.second = self._second(track, others[0])
        return track

    def _second(self, track: UnitTrack, sensor: str) -> SecondProbe:
        """A unit's second biomass probe with its chain (and first-pass chain where the model informs μ), with
        the newest stored calibration curve for it as the main probe's has, and the harvests, dilutions and dry
        weights the main probe has yet to place."""
        found = latest_biomass_calibration(self.calibrations, sensor, track.strain)
        second = SecondProbe(sensor, calibration=None if found is None else found[1].name,
                             pending_dilution=list(track.pending_dilution),
                             pending_dry_weight=list(track.pending_dry_weight))  # what the main one has yet to place
        model = sensor_growth_model(sensor, load_strain(track.strain), calibration=self._curve(second.calibration))
        if track.informed:
            second.first_pass = self.chains.add_unit(model)
            model = model.informed()
        second.index = self.chains.add_unit(model)
        return second

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
            for unit_id, time_us in sorted(self._late.items()):
                absorb_late(self, unit_id, time_us)
            self._late.clear()
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
        one chain update for every probe's samples (service.pipeline_chains), then per unit its estimates along
        time, then the decisions for every unit at once."""
        readings, events = self._usable(readings, events)
        for event in events:
            if event.kind in DILUTING_EVENTS or event.kind == "dry_weight_sample":
                track = self._track(event.unit_id, set())
                diluting = event.kind in DILUTING_EVENTS
                if event.time_us > track.last_time_us:
                    item = (int(event.time_us), float(event.params["fraction" if diluting else "g_per_l"]))
                    for probe in (track,) if track.second is None else (track, track.second):
                        (probe.pending_dilution if diluting else probe.pending_dry_weight).append(item)
                elif not diluting and not self._replaying:
                    self._late[event.unit_id] = min(self._late.get(event.unit_id, event.time_us), event.time_us)
        if len(readings) == 0:
            return [], []
        raw_values, good_values, units, times = watched_table(readings)
        if units.size == 0:
            return [], []
        column = {name: k for k, name in enumerate(WATCHED)}
        segments: list[tuple[str, UnitTrack, int, int]] = []  # unit, track, its new rows
        jobs: list[ChainJob] = []
        mains: list[tuple[str, ChainJob, ChainJob | None, dict | None]] = []  # unit, main, second, second before
        boundaries = np.flatnonzero(np.r_[True, units[1:] != units[:-1], True])
        lab_rows = np.flatnonzero(np.isfinite(raw_values[:, column["dry_weight"]]))  # dry-weight readings
        for first, end in itertools.pairwise(boundaries.tolist()):
            unit_id = units[first]
            present = ~np.isnan(raw_values[first:end]).all(axis=0)
            track = self._track(unit_id, {name for name, k in column.items() if present[k]})
            old = int(np.searchsorted(times[first:end], track.last_time_us, side="right"))  # older: done before
            lab = lab_rows[np.searchsorted(lab_rows, first) : np.searchsorted(lab_rows, end)]
            if not self._replaying and (late := lab[lab < first + old]).size:  # a dry weight typed in later
                self._late[unit_id] = min(self._late.get(unit_id, int(times[late[0]])), int(times[late[0]]))
            first += old
            if first == end:
                continue
            for row in lab[lab >= first].tolist():  # a dry-weight reading is a factor on X, as the event is
                item = (int(times[row]), float(raw_values[row, column["dry_weight"]]))
                for probe in (track,) if track.second is None else (track, track.second):
                    probe.pending_dry_weight.append(item)
            segments.append((unit_id, track, first, end))
            track.last_time_us = int(times[end - 1])
            if track.index < 0 or track.sensor not in column:
                continue
            rows = first + np.flatnonzero(~np.isnan(raw_values[first:end, column[track.sensor]]))
            hours = times[rows] // SNAPSHOT_EVERY_US
            saved_hour = track.snapshots[-1]["time_us"] // SNAPSHOT_EVERY_US if track.snapshots else -1
            saves = np.r_[True, hours[1:] != hours[:-1]] & (hours > saved_hour)
            main = ChainJob(track, track, rows, raw_values[rows, column[track.sensor]], saves)
            jobs.append(main)
            second, before = track.second, None
            if second is not None and second.index >= 0:
                before = {"point": probe_point(self.chains, second), "probe": asdict(second)}
                other_rows = first + np.flatnonzero(~np.isnan(raw_values[first:end, column[second.sensor]]))
                # its state is kept at its last sample at or before each of the main probe's saved points
                last = np.searchsorted(other_rows, rows[main.saves], side="right") - 1
                other_saves = np.zeros(other_rows.size, dtype=bool)
                other_saves[last[last >= 0]] = True
                second = ChainJob(track, second, other_rows, raw_values[other_rows, column[second.sensor]], other_saves)
                jobs.append(second)
            else:
                second = None
            mains.append((unit_id, main, second, before))
        self.frames_processed += sum(end - first for _, _, first, end in segments)
        new_rows = (np.concatenate([np.arange(first, end) for _, _, first, end in segments]) if segments
                    else np.empty(0, dtype=np.int64))  # fmt: skip
        main_rows = np.concatenate([job.rows for _, job, _, _ in mains]) if mains else np.empty(0, dtype=np.int64)
        position = np.searchsorted(new_rows, main_rows)  # both ascending
        row_saves = np.zeros(new_rows.size, dtype=bool)
        if mains:
            row_saves[position] = np.concatenate([job.saves for _, job, _, _ in mains])
        # The model-input sensors' running medians on every new row (fusion.online_rate), kept at the saved points.
        condition_units = (np.concatenate([np.full(end - first, track.conditions) for _, track, first, end in segments])
                           if segments else np.empty(0, dtype=np.int64))  # fmt: skip
        medians = self.conditions.update(condition_units, {name: raw_values[new_rows, column[name]]
                                                           for name in MODEL_INPUT_SENSORS}, row_saves)  # fmt: skip
        condition_points = self.conditions.saved
        if jobs:
            job_rows = np.concatenate([job.rows for job in jobs])
            advance_chains(self.chains, jobs, times, medians[np.searchsorted(new_rows, job_rows)], self.reactor)
        decisions: list[Decision] = []
        estimates: list[tuple] = []
        lag_us = self.settings.late_sample_lag_h * HOUR_US
        table = np.zeros((main_rows.size, len(ESTIMATE_INPUTS)))  # the decisions' estimate columns at the samples
        started = np.zeros(main_rows.size, dtype=bool)
        mixed = np.zeros(main_rows.size, dtype=bool)  # where the estimate is the two probes' mixture
        unit_estimates: list[tuple[str, dict[str, np.ndarray], slice]] = []
        offset = 0
        for unit_id, main, other, before in mains:
            track, sampled = main.track, slice(offset, offset + main.rows.size)
            offset += main.rows.size
            mixing = second_probe(main, other, times, self._curve) if track.second is not None else None
            columns = estimate_columns(track, times[main.rows], main.mean, main.cov, main.dilution,
                                       strain_of(track.strain), self._curve(track.calibration), mixing)  # fmt: skip
            if columns is None:
                continue
            totals = columns.pop("harvested"), columns.pop("harvested_variance")
            on = np.flatnonzero(~np.isnan(main.mean[:, 0]))
            for j in np.flatnonzero(main.saves[on]).tolist():
                k = int(on[j])
                row = int(np.searchsorted(new_rows, main.rows[k]))
                point, extras = second_point(self.chains, main, other, before, mixing, k, times)
                track.snapshots.append({"time_us": int(times[main.rows[k]]),
                                        "chain": [*main.points[k], *point, *condition_points[row]],
                                        "second": extras, "initial": track.initial,
                                        "harvested": float(totals[0][j]), "harvested_variance": float(totals[1][j]),
                                        "last_biomass": (float(columns["biomass_g_per_l"][j]),
                                                         float(columns["biomass_sd"][j]))})  # fmt: skip
            while track.snapshots and track.snapshots[0]["time_us"] < track.last_time_us - lag_us:
                track.snapshots.pop(0)
            started[sampled.start + on] = True
            if mixing is not None:  # a mixture's error is no single chain's: the conservative σ_r there
                mixed[sampled.start + on] = mixing[0][on]
            table[sampled.start + on, :5] = np.column_stack([columns["biomass_g_per_l"], columns["biomass_sd"],
                                                             columns["growth_rate_per_h"], columns["growth_rate_sd"],
                                                             main.dilution[on]])  # fmt: skip
            unit_estimates.append((unit_id, columns, sampled))
        if started.any():  # fusion.growth_window's terms for every unit's samples at once, each with its factor
            chain = np.concatenate([np.full(job.rows.size, job.probe.index) for _, job, _, _ in mains])
            mean = np.concatenate([job.mean for _, job, _, _ in mains])[started]
            cov = np.concatenate([job.cov for _, job, _, _ in mains])[started]
            table[started, 5:] = np.column_stack(window_error_terms(mean, cov, self.chains.models[chain[started]]))
            table[mixed, 5:] = np.nan
        # Decisions for every unit of the batch at once (control.decisions), on all its new rows.
        row_estimates = np.full((new_rows.size, len(ESTIMATE_INPUTS)), np.nan)
        row_estimates[position[started]] = table[started]
        decision_units = (np.concatenate([np.full(end - first, track.decisions) for _, track, first, end in segments])
                          if segments else np.empty(0, dtype=np.int64))  # fmt: skip
        if self._replaying:  # going back for a late sample: the decisions taken stand (service.pipeline_replay)
            ready = np.zeros(new_rows.size, dtype=bool)
        else:
            rows = DecisionRows(decision_units, times[new_rows], good_values[new_rows], row_estimates)
            decided, self.decisions, advice = decide(self.decisions, self.policy, rows,
                                                     [u for u, _ in self._decided],
                                                     [strain for _, strain in self._decided])  # fmt: skip
            decisions += decided
            ready = advice.ready
        ready_at_samples = ready[position]
        for unit_id, columns, sampled in unit_estimates:
            columns["harvest_ready"] = ready_at_samples[sampled][started[sampled]]
            estimates += [(unit_id, *row) for row in zip(*columns.values(), strict=True)]
        return decisions, estimates

    def _curve(self, name: str | None) -> BiomassCalibration | None:
        return None if name is None or self.calibrations is None else _load_curve(self.calibrations / name)

    def go_back(self, track: UnitTrack, snapshot: dict) -> None:
        """Put a unit's chains, condition readings and totals back to a saved point (service.pipeline_replay)."""
        point = np.asarray(snapshot["chain"], dtype=float)
        width = 2 * len(self.chains.unit_state(track.index)) + 3
        set_probe_point(self.chains, track, point[:width])
        second = track.second
        if second is not None and second.index >= 0:
            if snapshot.get("second") is None:  # the second probe came after the point: it starts afresh
                for index in (second.index, second.first_pass):
                    if index >= 0:
                        self.chains.reset_unit(index)
                track.second = SecondProbe(second.sensor, second.index, second.first_pass, second.calibration)
            else:
                track.second = SecondProbe.from_dict(snapshot["second"])
                set_probe_point(self.chains, track.second, point[width : 2 * width])
        self.conditions.set_unit_state(track.conditions, point[2 * width :])
        track.go_back(snapshot)

    # ---- state ------------------------------------------------------------------------------------------------
    def refilter(self, readings: ReadingBatch, events: Sequence[StoredEvent]) -> list[tuple]:
        """Estimate rows of stored readings and events run through the chains again without deciding (a late
        sample's fixed-lag re-filtering, service.pipeline_replay); the caller holds the lock."""
        self._replaying = True
        try:
            return self._process(readings, events)[1]
        finally:
            self._replaying = False

    # ---- state ------------------------------------------------------------------------------------------------
    def _checkpoint(self) -> None:
        self.store.save_state(STATE_NAME, state_blob(self.chains, self.conditions, self.decisions, self.tracks))
        self._last_checkpoint = time.monotonic()

    def checkpoint(self) -> None:
        """Save the state now (also done every ``checkpoint_every_s`` while processing)."""
        with self._lock:
            self._checkpoint()

    def restore(self) -> int:
        """Load the last checkpoint and replay what the store received after it; returns the readings replayed.
        A state that cannot be loaded is quarantined and everything is replayed; a unit whose replay fails is
        quarantined and the others go on."""
        self.restoring = True
        try:
            self._load_checkpoint()
            return replay_stored(self, list(WATCHED))
        finally:
            self.restoring = False

    def _load_checkpoint(self) -> None:
        """The last checkpoint's state, if there is one of this layout; one that cannot be loaded is
        quarantined (then everything is replayed)."""
        blob = self.store.load_state(STATE_NAME)
        if blob is None:
            return
        with self._lock:
            try:
                loaded = read_state(blob)
            except Exception as error:
                self.quarantine.add("", "state", STATE_NAME, 0, f"the saved pipeline state cannot be loaded "
                                    f"({type(error).__name__}: {error}); every stored reading is replayed")
                return
            if loaded is not None:
                self.chains, self.conditions, self.decisions, self.tracks = loaded
                by_index = sorted((track.decisions, unit) for unit, track in self.tracks.items()
                                  if track.decisions >= 0)  # fmt: skip
                self._decided = [(unit, strain_of(self.tracks[unit].strain)) for _, unit in by_index]

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


