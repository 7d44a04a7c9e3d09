"""The one way in for frames, shared by HTTP and MQTT: authorise, store whole and durably, hand to the live
pipeline, acknowledge. A frame is acknowledged only after the store's transaction is committed."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from algaflow.catalog.frames import Frame
from algaflow.service.auth import Principal
from algaflow.service.pipeline import LivePipeline
from algaflow.store import Ingested, Store
from algaflow.store.base import IngestBatch


class ForbiddenError(PermissionError):
    """The principal may not write (one of) the units named."""


def seq_ranges(seqs: Sequence[int]) -> list[list[int]]:
    """Sorted, merged [first, last] ranges of sequence numbers (the acknowledgement's compact form)."""
    ranges: list[list[int]] = []
    for seq in sorted(set(seqs)):
        if ranges and seq == ranges[-1][1] + 1:
            ranges[-1][1] = seq
        else:
            ranges.append([seq, seq])
    return ranges


@dataclass(slots=True)
class Counters:
    """What came in and what was refused, for /health and the logs."""

    frames: int = 0
    readings: int = 0
    rejected_http: int = 0
    rejected_mqtt: int = 0
    mqtt_messages: int = 0  # taken from the broker and answered (stored or rejected)
    by_reason: dict[str, int] = field(default_factory=dict)
    mqtt_by_unit: dict[str, int] = field(default_factory=dict)  # messages answered, by their topic's unit
    rejected_by_unit: dict[str, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def reject(self, channel: str, reason: str, unit_id: str | None = None) -> None:
        with self.lock:
            if unit_id is not None:
                self.rejected_by_unit[unit_id] = self.rejected_by_unit.get(unit_id, 0) + 1
            if channel == "mqtt":
                self.rejected_mqtt += 1
            else:
                self.rejected_http += 1
            self.by_reason[reason] = self.by_reason.get(reason, 0) + 1


class Ingestor:
    """Store frames and feed the pipeline (module doc)."""

    def __init__(self, store: Store, pipeline: LivePipeline | None = None) -> None:
        self.store = store
        self.pipeline = pipeline
        self.counters = Counters()
        self.started = time.time()
        self.last_heard: dict[str, float] = {}  # unit → wall-clock time (s) of its last stored frame

    def ingest(self, principal: Principal | None, frames: Sequence[Frame]) -> tuple[Ingested, dict[str, list]]:
        """Store ``frames`` if ``principal`` may write every unit they name (None: a trusted internal caller,
        the MQTT bridge, whose broker has checked the topic). Returns the counts and, per unit, the
        acknowledged seq ranges. Raises :class:`ForbiddenError` or the store's UnknownUnitError; nothing is stored
        then."""
        units = {frame.unit_id for frame in frames}
        if principal is not None:
            refused = sorted(unit for unit in units if not principal.may_write(unit))
            if refused:
                raise ForbiddenError(f"this token may not write unit(s) {', '.join(refused)}")
        batch = IngestBatch.from_frames(frames)
        stored = self.store.ingest(batch)
        heard = time.time()
        with self.counters.lock:
            self.counters.frames += len(frames)
            self.counters.readings += len(batch.readings)
            for unit in units:
                self.last_heard[unit] = heard
        if self.pipeline is not None and self.pipeline.settings.enabled:
            self.pipeline.submit(batch.readings, batch.events)
        seqs: dict[str, list[int]] = {unit: [] for unit in sorted(units)}
        for frame in frames:  # one pass, not one per unit
            seqs[frame.unit_id].append(frame.seq)
        acknowledged = {unit: seq_ranges(unit_seqs) for unit, unit_seqs in seqs.items()}
        return stored, acknowledged
