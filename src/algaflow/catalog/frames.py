"""The Frame (DESIGN.md §1): one unit's readings at one instant, as it crosses the edge (agent → MQTT/HTTP →
service), validated against the sensor catalog.

    Frame = {unit_id, time (UTC), seq (per unit, increasing), readings {catalog sensor: value}, events [...]}

Names are checked (an unknown sensor or event kind is an error naming the catalog), values must be finite
numbers, every time (the frame's and its events') must carry a zone (it is kept in UTC) and lie between
``EARLIEST`` and ``FUTURE_SLACK`` ahead of the receiver's clock. An event's parameters are checked against
its kind in the event table (catalog.events: units, ranges, flat values, text lengths). A value outside the
sensor's plausible range is kept with the quality flag ``OUT_OF_RANGE`` (a broken probe's readings are
evidence too), never silently dropped.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator

from algaflow.catalog.events import EventParamsError, check_params, events_json_schema
from algaflow.catalog.sensors import SENSORS

GOOD, OUT_OF_RANGE = 0, 1  # reading quality flags as stored
QUALITY_NAMES = ("good", "out_of_range")
MAX_READINGS = len(SENSORS)  # a frame holds at most one value per catalog sensor
MAX_EVENTS = 32  # events in one frame
FUTURE_SLACK = timedelta(minutes=5)
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)  # no reactor logged before this; an earlier time is a broken clock
UNIT_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"  # safe in an MQTT topic, a file name and a URL

UnitId = Annotated[str, Field(pattern=UNIT_ID_PATTERN)]
RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")


def _rfc3339(value: Any) -> Any:
    """A time crosses the edge as RFC 3339 text with its zone (what OpenAPI's ``date-time`` means), not as a
    number of seconds, nor a date alone."""
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str) or not RFC3339.match(value):
        raise ValueError(f"time must be RFC 3339 text with its time zone, e.g. 2026-11-21T08:00:00Z "
                         f"(got {str(value)[:40]!r})")  # fmt: skip
    return value


Time = Annotated[datetime, BeforeValidator(_rfc3339)]


def _aware_utc(value: datetime) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("time must carry a time zone (UTC, e.g. 2026-11-21T08:00:00Z)")
    try:
        return value.astimezone(UTC)
    except OverflowError:  # 9999-12-31T23:59-05:00 has no UTC time
        raise ValueError(f"time {value.isoformat()} lies outside the calendar in UTC") from None


def checked_time(value: datetime, now: datetime | None = None) -> datetime:
    """``value`` in UTC if it carries a zone and lies in [``EARLIEST``, now + ``FUTURE_SLACK``], else
    ValueError saying which bound it breaks."""
    value = _aware_utc(value)
    if value < EARLIEST:
        raise ValueError(f"time {value.isoformat()} is before {EARLIEST:%Y-%m-%d} (a clock not set?)")
    if value > (now or datetime.now(UTC)) + FUTURE_SLACK:
        raise ValueError(f"time {value.isoformat()} is in the future (more than {FUTURE_SLACK} ahead)")
    return value


class FrameEvent(BaseModel):
    """Something that happened to the culture or the hardware, reported with a frame."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: str
    time: Time | None = None  # default: the frame's time
    params: dict[str, int | float | str] = Field(default_factory=dict)

    @classmethod
    def __get_pydantic_json_schema__(cls, core_schema: Any, handler: Any) -> dict[str, Any]:
        return events_json_schema()  # one branch per kind, from the event table: what the validators accept

    @field_validator("time")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        return None if value is None else checked_time(value)

    @field_validator("params", mode="before")
    @classmethod
    def _flat(cls, params: Any) -> Any:
        """Values are kept as given (an integer stays an integer); nesting and booleans are refused here."""
        if isinstance(params, dict):
            for name, value in params.items():
                if isinstance(value, bool) or not isinstance(value, int | float | str):
                    raise ValueError(f"params.{str(name)[:64]} must be a number or a text (got "
                                     f"{type(value).__name__}); event parameters are flat")  # fmt: skip
        return params

    @model_validator(mode="after")
    def _params_of_kind(self) -> FrameEvent:
        try:
            check_params(self.kind, self.params)
        except EventParamsError as error:
            raise ValueError(str(error)) from None
        return self


class Frame(BaseModel):
    """One unit's readings at one instant (module doc)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    unit_id: UnitId
    time: Time
    seq: int = Field(ge=0, le=2**53, description="the unit's frame counter: it only grows")
    readings: dict[str, float] = Field(
        default_factory=dict, max_length=MAX_READINGS, json_schema_extra={"propertyNames": {"enum": list(SENSORS)}}
    )
    events: list[FrameEvent] = Field(default_factory=list, max_length=MAX_EVENTS)

    @field_validator("time")
    @classmethod
    def _utc_in_bounds(cls, value: datetime) -> datetime:
        return checked_time(value)

    @field_validator("seq", mode="before")
    @classmethod
    def _not_a_boolean(cls, seq: Any) -> Any:
        if isinstance(seq, bool) or not isinstance(seq, int | float):
            raise ValueError(f"seq must be an integer (got {type(seq).__name__})")
        return seq

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
