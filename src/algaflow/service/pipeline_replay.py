"""The live pipeline's replays from the store (service.pipeline): after a restart, what each unit received
after its checkpoint (:func:`replay_stored`); and a dry weight that came late, by fixed-lag re-filtering
(:func:`absorb_late`).

Fixed-lag re-filtering: each unit keeps a saved point (its chains, condition readings and totals,
service.pipeline_state) after
the first sample of every 4 hours over the last ``late_sample_lag_h``. A dry weight dated at or before the unit's
last processed sample sends the chain back to the last saved point before it; the unit's stored biomass
readings and events since are filtered again, the dry weight among them, and those estimates rewritten. The
chain is deterministic given its inputs, so the result is the chain that had the sample on time; the cost is
the readings since the saved point, not the unit's history. The harvest advice stored with the rewritten
estimates and the decisions taken stand; later ones follow the corrected chain, but the decisions' own state
is not rewound: for a day after the late sample's time the daily net growth compares with the estimates as
they were before it. A sample older than every
saved point is quarantined with the reason.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from algaflow.fusion.expected_rate import MODEL_INPUT_SENSORS
from algaflow.service.pipeline_state import HOUR_US
from algaflow.store import ReadingBatch, StoredEvent
from algaflow.store.base import ESTIMATE_COLUMNS

if TYPE_CHECKING:
    from algaflow.service.pipeline import LivePipeline

log = logging.getLogger("algaflow.pipeline")


def stored_batch(unit_id: str, stored: pd.DataFrame) -> ReadingBatch:
    """One unit's stored readings (the store's table) as a batch in time order."""
    stored = stored.sort_values(["time_us", "sensor"], kind="stable")
    return ReadingBatch(np.full(len(stored), unit_id, dtype=object), stored.sensor.to_numpy(),
                        stored.time_us.to_numpy(), stored.value.to_numpy(), stored.quality.to_numpy())  # fmt: skip


def stored_events(unit_id: str, table: pd.DataFrame) -> list[StoredEvent]:
    """One unit's stored events as the pipeline takes them; params kept as stored (the pipeline checks them)."""
    return [StoredEvent(unit_id, int(e.time_us), str(e.kind), e.params)
            for e in table.itertuples(index=False)]  # fmt: skip


def replay_stored(pipeline: LivePipeline, sensors: list[str]) -> int:
    """Process what the store received for each unit after its track's last time (every stored reading of a
    unit without one); returns the readings replayed. A unit whose replay fails is quarantined and the
    others go on."""
    replayed = 0
    for unit_id in pipeline.store.units():
        try:
            track = pipeline.tracks.get(unit_id)
            start = None if track is None else track.last_time_us + 1
            stored = pipeline.store.readings(unit_id, sensors, start_us=start)
            events = pipeline.store.events(unit_id, start_us=start)
            if stored.empty and events.empty:
                continue
            batch = stored_batch(unit_id, stored)
            pipeline.process(batch, stored_events(unit_id, events))
            replayed += len(batch)
        except Exception as error:
            pipeline.quarantine.add(unit_id, "batch", "", 0, f"replaying its stored record failed: "
                                    f"{type(error).__name__}: {error}")  # fmt: skip
    return replayed


def absorb_late(pipeline: LivePipeline, unit_id: str, time_us: int) -> None:
    """A dry weight at ``time_us`` that came after the unit's chain had passed it (module doc)."""
    track = pipeline.tracks.get(unit_id)
    if track is None or track.index < 0:
        return
    before = [snapshot for snapshot in track.snapshots if snapshot["time_us"] < time_us]
    if not before:
        lag_h = pipeline.settings.late_sample_lag_h
        pipeline.quarantine.add(unit_id, "event", "dry_weight_sample", time_us, "a dry weight older than the "
                                f"pipeline's lag ([pipeline] late_sample_lag_h = {lag_h:g} h): not used live; "
                                "`algaflow fuse` on an export uses it")  # fmt: skip
        return
    snapshot, end_us = before[-1], track.last_time_us
    pipeline.go_back(track, snapshot)
    start_us = track.last_time_us + 1
    store = pipeline.store
    # the second probe's chain and the conditions' running medians go on from the point too
    sensors = [track.sensor, *([track.second.sensor] if track.second is not None else []), *MODEL_INPUT_SENSORS,
               "dry_weight"]
    readings = stored_batch(unit_id, store.readings(unit_id, sensors, start_us=start_us, end_us=end_us + 1))
    events = stored_events(unit_id, store.events(unit_id, start_us=start_us))
    estimates = pipeline.refilter(readings, events)
    track.last_time_us = max(track.last_time_us, end_us)
    if estimates:
        table = pd.DataFrame(estimates, columns=["unit_id", *ESTIMATE_COLUMNS])
        stored = store.estimates(unit_id, start_us=start_us, end_us=end_us + 1)
        advice = dict(zip(stored.time_us.tolist(), stored.harvest_ready.tolist(), strict=True))
        table["harvest_ready"] = [bool(advice.get(t, False)) for t in table.time_us.tolist()]
        store.write_estimates(table)
    log.info("unit %s: a late dry weight; its chain went back %.1f h and re-filtered %d readings", unit_id,
             (end_us - start_us) / HOUR_US, len(readings))  # fmt: skip
