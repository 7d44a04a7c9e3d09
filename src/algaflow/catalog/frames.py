"""The Frame (DESIGN.md §1): one unit's readings at one instant, as it crosses the edge (agent → MQTT/HTTP →
service), validated against the sensor catalog.

    Frame = {unit_id, time (UTC), seq (per unit, increasing), readings {catalog sensor: value}, events [...]}

Names are checked (an unknown sensor or event kind is an error naming the catalog), values must be finite
numbers, the time must carry a zone (it is kept in UTC) and lie no further than ``FUTURE_SLACK`` ahead of
the receiver's clock. A value outside the sensor's plausible range is kept with the quality flag
``OUT_OF_RANGE`` (a broken probe's readings are evidence too), never silently dropped.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from algaflow.catalog.sensors import SENSORS

GOOD, OUT_OF_RANGE = 0, 1  # reading quality flags as stored
QUALITY_NAMES = ("good", "out_of_range")
EVENT_KINDS = ("harvest", "dilution", "dose_nitrate", "degas_on", "degas_off", "set_led", "set_air_flow",
               "set_temperature", "set_co2", "dry_weight_sample", "calibration", "maintenance", "note",
               "alarm_ack")  # fmt: skip
MAX_READINGS = len(SENSORS)  # a frame holds at most one value per catalog sensor
FUTURE_SLACK = timedelta(minutes=5)
UNIT_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"  # safe in an MQTT topic, a file name and a URL

UnitId = Annotated[str, Field(pattern=UNIT_ID_PATTERN)]


def _aware_utc(value: datetime) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("time must carry a time zone (UTC, e.g. 2026-11-21T08:00:00Z)")
    return value.astimezone(UTC)


class FrameEvent(BaseModel):
    """Something that happened to the culture or the hardware, reported with a frame."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: str
    time: datetime | None = None  # default: the frame's time
    params: dict[str, Any] = Field(default_factory=dict)

    @field_validator("kind")
    @classmethod
    def _known_kind(cls, kind: str) -> str:
        if kind not in EVENT_KINDS:
            raise ValueError(f"unknown event kind {kind!r}; known kinds: {', '.join(EVENT_KINDS)}")
        return kind

    @field_validator("time")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        return None if value is None else _aware_utc(value)

    @model_validator(mode="after")
    def _fraction(self) -> FrameEvent:
        if self.kind in ("harvest", "dilution"):
            fraction = self.params.get("fraction")
            if not isinstance(fraction, int | float) or isinstance(fraction, bool) or not 0.0 < fraction < 1.0:
                raise ValueError(f"a {self.kind} needs params.fraction, the share of culture removed, in (0, 1)")
        return self


class Frame(BaseModel):
    """One unit's readings at one instant (module doc)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    unit_id: UnitId
    time: datetime
    seq: int = Field(ge=0, le=2**63 - 1)
    readings: dict[str, float] = Field(default_factory=dict, max_length=MAX_READINGS)
    events: list[FrameEvent] = Field(default_factory=list, max_length=32)

    @field_validator("time")
    @classmethod
    def _utc_not_future(cls, value: datetime) -> datetime:
        value = _aware_utc(value)
        if value > datetime.now(UTC) + FUTURE_SLACK:
            raise ValueError(f"time {value.isoformat()} is in the future (more than {FUTURE_SLACK} ahead)")
        return value

    @field_validator("readings", mode="before")
    @classmethod
    def _no_booleans(cls, readings: Any) -> Any:
        if isinstance(readings, dict):
            for name, value in readings.items():
                if isinstance(value, bool) or not isinstance(value, int | float):
                    raise ValueError(f"reading {name!r} must be a number (got {type(value).__name__})")
        return readings

    @field_validator("readings")
    @classmethod
    def _catalog_sensors(cls, readings: dict[str, float]) -> dict[str, float]:
        unknown = sorted(set(readings) - set(SENSORS))
        if unknown:
            raise ValueError(f"unknown sensor(s) {', '.join(map(repr, unknown))}; the catalog has "
                             f"{', '.join(SENSORS)}")  # fmt: skip
        bad = sorted(name for name, value in readings.items() if not math.isfinite(value))
        if bad:
            raise ValueError(f"reading(s) {', '.join(bad)} are not finite numbers")
        return readings

    def quality(self) -> dict[str, int]:
        """Per reading: ``GOOD`` inside the catalog's plausible range, else ``OUT_OF_RANGE``."""
        flags = {}
        for name, value in self.readings.items():
            low, high = SENSORS[name].range
            flags[name] = GOOD if low <= value <= high else OUT_OF_RANGE
        return flags
