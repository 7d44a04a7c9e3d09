"""The store's one interface (DESIGN.md §6): every backend keeps units, readings with a quality flag,
1-minute rollups of the good readings, and events, and answers the same queries.

Times cross this interface as integer microseconds since 1970-01-01 UTC (``time_us``): exact, ordered and
cheap to move in bulk. A reading is identified by (unit, sensor, time): writing it again is harmless (the
first value stays), so an agent may resend whatever was not acknowledged.

Ingest (:meth:`Store.ingest`): a list of Frames lands in one transaction, its readings, events and a row per
frame (unit, seq, time) in arrival order, so what was acknowledged is whole and a resent frame changes
nothing. Beside the telemetry the store keeps what the live pipeline derives (estimates, decisions), the
pipeline's saved state, and the hashes of access tokens.

Downsampling: ``readings(..., every_s=s)`` returns per bucket [t, t + s) the mean, min, max and count of
the good readings (quality 0), buckets aligned to multiples of s since the epoch; for s a multiple of 60
it is read from the 1-minute rollups (start then counts from its whole minute), which the backends keep
up to date in the same transaction as the readings.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from algaflow.catalog import SENSORS
from algaflow.catalog.frames import Frame

if TYPE_CHECKING:
    from algaflow.control.decisions import Decision

MINUTE_US = 60_000_000
DAY_US = 86_400_000_000
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def to_time_us(moment: datetime) -> int:
    """Microseconds since the epoch of an aware datetime (exact)."""
    if moment.tzinfo is None:
        raise ValueError("times at the store's edge must carry a time zone")
    delta = moment - EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


@dataclass(slots=True)
class ReadingBatch:
    """Readings in columns: unit ids and sensor names (str), time_us (int64), value (float64), quality (int8)."""

    unit_id: np.ndarray
    sensor: np.ndarray
    time_us: np.ndarray
    value: np.ndarray
    quality: np.ndarray

    def __post_init__(self) -> None:
        self.unit_id = np.asarray(self.unit_id, dtype=object)
        self.sensor = np.asarray(self.sensor, dtype=object)
        self.time_us = np.asarray(self.time_us, dtype=np.int64)
        self.value = np.asarray(self.value, dtype=np.float64)
        self.quality = np.asarray(self.quality, dtype=np.int8)
        sizes = {a.shape for a in (self.unit_id, self.sensor, self.time_us, self.value, self.quality)}
        if len(sizes) != 1 or len(next(iter(sizes))) != 1:
            raise ValueError(f"a reading batch needs five 1-D columns of one length (got shapes {sorted(sizes)})")

    def __len__(self) -> int:
        return int(self.time_us.size)

    @classmethod
    def from_frames(cls, frames: Iterable[Frame]) -> ReadingBatch:
        """Every reading of ``frames``, with the catalog's quality flag."""
        units, sensors, times, values, qualities = [], [], [], [], []
        for frame in frames:
            time_us = to_time_us(frame.time)
            quality = frame.quality()
            for name, value in frame.readings.items():
                units.append(frame.unit_id)
                sensors.append(name)
                times.append(time_us)
                values.append(value)
                qualities.append(quality[name])
        return cls(np.array(units, dtype=object), np.array(sensors, dtype=object), np.array(times, dtype=np.int64),
                   np.array(values, dtype=np.float64), np.array(qualities, dtype=np.int8))  # fmt: skip

    def rows(self) -> list[tuple[str, str, int, float, int]]:
        return list(zip(self.unit_id.tolist(), self.sensor.tolist(), self.time_us.tolist(), self.value.tolist(),
                        self.quality.tolist(), strict=True))  # fmt: skip


@dataclass(frozen=True, slots=True)
class StoredEvent:
    unit_id: str
    time_us: int
    kind: str
    params: dict


def events_of_frames(frames: Iterable[Frame]) -> list[StoredEvent]:
    """The events carried by ``frames`` (an event without its own time takes the frame's)."""
    return [StoredEvent(frame.unit_id, to_time_us(event.time or frame.time), event.kind, dict(event.params))
            for frame in frames for event in frame.events]  # fmt: skip


@dataclass(slots=True)
class IngestBatch:
    """What a list of frames writes: their readings, events and (unit, seq, time) keys."""

    readings: ReadingBatch
    events: list[StoredEvent]
    frames: list[tuple[str, int, int]]

    @classmethod
    def from_frames(cls, frames: Sequence[Frame]) -> IngestBatch:
        return cls(ReadingBatch.from_frames(frames), events_of_frames(frames),
                   [(frame.unit_id, frame.seq, to_time_us(frame.time)) for frame in frames])  # fmt: skip

    def units(self) -> set[str]:
        return {unit for unit, _, _ in self.frames} | set(self.readings.unit_id.tolist())


@dataclass(frozen=True, slots=True)
class Ingested:
    """How many frames, readings and events of an ingest were new (the rest had been stored before)."""

    frames: int
    readings: int
    events: int


READING_COLUMNS = ("time_us", "sensor", "value", "quality")
FRAME_COLUMNS = ("seq", "time_us")
ESTIMATE_COLUMNS = ("time_us", "biomass_g_per_l", "biomass_sd", "growth_rate_per_h", "growth_rate_sd",
                    "co2_captured_g", "co2_captured_sd", "harvest_ready")  # fmt: skip
DECISION_COLUMNS = ("time_us", "kind", "reason", "params")
DOWNSAMPLED_COLUMNS = ("time_us", "sensor", "mean", "min", "max", "count")
EVENT_COLUMNS = ("time_us", "kind", "params")
DAY_COLUMNS = ("day_us", "count")


class UnknownUnitError(KeyError):
    """A query or write names a unit that is not registered."""


class Store(ABC):
    """What every backend does (module doc). Writes are durable when they return."""

    name: str

    @abstractmethod
    def register_unit(self, unit_id: str, metadata: dict) -> None:
        """Create the unit, or replace its metadata (strain, geometry, site, sensors ...)."""

    @abstractmethod
    def units(self) -> dict[str, dict]:
        """Every registered unit and its metadata."""

    @abstractmethod
    def unit(self, unit_id: str) -> dict | None:
        """One unit's metadata, or None when it is not registered."""

    @abstractmethod
    def write_readings(self, batch: ReadingBatch) -> int:
        """Store the batch; readings already stored (same unit, sensor, time) are ignored. Returns how many
        were new. Every unit must be registered."""

    @abstractmethod
    def readings(self, unit_id: str, sensors: Sequence[str] | None = None, start_us: int | None = None,
                 end_us: int | None = None, every_s: int | None = None) -> pd.DataFrame:  # fmt: skip
        """One unit's readings in [start, end), ordered by sensor then time: ``READING_COLUMNS``, or with
        ``every_s`` the ``DOWNSAMPLED_COLUMNS`` per bucket (module doc)."""

    @abstractmethod
    def reading_days(self, unit_id: str, start_us: int | None = None, end_us: int | None = None) -> pd.DataFrame:
        """How many readings (any quality) one unit has per UTC day in [start, end): ``DAY_COLUMNS``, the day's
        start (µs, a multiple of ``DAY_US``) and the count, days with readings only, by day."""

    @abstractmethod
    def write_events(self, events: Sequence[StoredEvent]) -> int:
        """Store events; one already stored (same unit, time, kind) is ignored. Returns how many were new."""

    @abstractmethod
    def events(self, unit_id: str, start_us: int | None = None, end_us: int | None = None) -> pd.DataFrame:
        """One unit's events in [start, end) by time: ``EVENT_COLUMNS``."""

    @abstractmethod
    def ingest(self, frames: Sequence[Frame] | IngestBatch) -> Ingested:
        """Store frames (or their :class:`IngestBatch`) whole, in one transaction (module doc); a frame already
        stored (same unit and seq) adds nothing. Every unit must be registered, else nothing is stored."""

    @abstractmethod
    def frame_log(self, unit_id: str) -> pd.DataFrame:
        """One unit's stored frames in the order they arrived: ``FRAME_COLUMNS``."""

    @abstractmethod
    def last_frame(self, unit_id: str) -> tuple[int, int] | None:
        """The (seq, time_us) of the unit's stored frame with the highest seq (its latest), or None."""

    @abstractmethod
    def write_estimates(self, table: pd.DataFrame) -> int:
        """Store estimates of any units in one transaction (``unit_id`` and ``ESTIMATE_COLUMNS``); an estimate at
        a stored time replaces it. Returns rows written."""

    @abstractmethod
    def estimates(self, unit_id: str, start_us: int | None = None, end_us: int | None = None) -> pd.DataFrame:
        """One unit's estimates in [start, end) by time: ``ESTIMATE_COLUMNS``."""

    @abstractmethod
    def write_decisions(self, decisions: Sequence[Decision]) -> int:
        """Store decisions; one already stored (same unit, time, kind) is ignored. Returns how many were new."""

    @abstractmethod
    def decisions(self, unit_id: str, start_us: int | None = None, end_us: int | None = None) -> pd.DataFrame:
        """One unit's decisions in [start, end) by time: ``DECISION_COLUMNS``."""

    @abstractmethod
    def save_state(self, name: str, blob: bytes) -> None:
        """Keep a named piece of state (the live pipeline's), replacing the previous one, durably."""

    @abstractmethod
    def load_state(self, name: str) -> bytes | None:
        """The state saved under ``name``, or None."""

    @abstractmethod
    def save_token(self, token_hash: str, record: dict) -> None:
        """Keep an access token's hash and what it grants (``record``: kind, unit, role, label ...)."""

    @abstractmethod
    def token_record(self, token_hash: str) -> dict | None:
        """What the token with this hash grants, or None."""

    @abstractmethod
    def tokens(self) -> dict[str, dict]:
        """Every token hash and its record."""

    @abstractmethod
    def delete_token(self, token_hash: str) -> bool:
        """Revoke; True when there was such a token."""

    @abstractmethod
    def close(self) -> None: ...

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def time_window(start_us: int | None, end_us: int | None) -> tuple[int, int]:
    """[start, end) in µs, an open end standing for all time."""
    return (-(2**62) if start_us is None else int(start_us)), (2**62 if end_us is None else int(end_us))


def downsample_source(start_us: int, every_s: int) -> tuple[int, bool]:
    """Where a downsampled query reads (module doc): (start, True) from the 1-minute rollups, start moved to
    the beginning of its minute, when the bucket is whole minutes; (start, False) from the raw readings."""
    if (every_s * 1_000_000) % MINUTE_US == 0:
        return start_us - ((start_us % MINUTE_US) + MINUTE_US) % MINUTE_US, True
    return start_us, False


def day_floor_sql(column: str) -> str:
    """SQL for the start (µs) of the UTC day holding ``column`` (a floor, right for times before 1970 too)."""
    return f"({column} - (({column} % {DAY_US}) + {DAY_US}) % {DAY_US})"


def check_every_s(every_s: int | None) -> None:
    if every_s is not None and (not isinstance(every_s, int) or every_s <= 0):
        raise ValueError(f"every_s must be a positive whole number of seconds (got {every_s!r})")


def check_sensors(sensors: Sequence[str] | None) -> list[str] | None:
    if sensors is None:
        return None
    unknown = sorted(set(sensors) - set(SENSORS))
    if unknown:
        raise ValueError(f"unknown sensor(s) {', '.join(unknown)}; the catalog has {', '.join(SENSORS)}")
    return list(sensors)


__all__ = ["DAY_COLUMNS", "DAY_US", "DECISION_COLUMNS", "DOWNSAMPLED_COLUMNS", "ESTIMATE_COLUMNS",
           "EVENT_COLUMNS", "FRAME_COLUMNS", "MINUTE_US", "READING_COLUMNS", "IngestBatch", "Ingested",
           "ReadingBatch", "Store", "StoredEvent", "UnknownUnitError", "check_every_s", "check_sensors",
           "day_floor_sql", "downsample_source", "events_of_frames", "time_window", "to_time_us"]  # fmt: skip
