"""Recording an operator's event (a harvest done, a manual dry-weight sample, an alarm acknowledged ...),
shared by the HTTP API and the dashboard's forms: checked field by field, stored, and handed to the live
pipeline. A dry-weight sample is also stored as a ``dry_weight`` reading at the sample's time.

Checks: the time carries a time zone and is not in the future (beyond the frames' 5-minute clock slack);
the kind and its parameters are what ``catalog.frames.FrameEvent`` accepts (a harvest or dilution fraction
in (0, 1)); a dry weight lies in the catalog's plausible range for ``dry_weight``; a calibration names a
catalog sensor, or none (every probe of the unit was recalibrated).
"""

from __future__ import annotations

from datetime import UTC, datetime

from pydantic import ValidationError

from algaflow.catalog import SENSORS
from algaflow.catalog.frames import FUTURE_SLACK, FrameEvent
from algaflow.service.pipeline import LivePipeline
from algaflow.store import ReadingBatch, Store, StoredEvent
from algaflow.store.base import to_time_us


class EventRejectedError(ValueError):
    """An event that is not recorded; ``field`` names the input at fault (time, kind, fraction, g_per_l ...)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


def checked_event(kind: str, params: dict, time: datetime, now: datetime | None = None) -> FrameEvent:
    """The event if every check of the module doc passes, else :class:`EventRejectedError` naming the field."""
    if time.tzinfo is None:
        raise EventRejectedError("time", "the time must carry a time zone")
    now = now or datetime.now(UTC)
    if time > now + FUTURE_SLACK:
        raise EventRejectedError("time", f"{time.isoformat()} is in the future")
    try:
        event = FrameEvent(kind=kind, params=params)
    except ValidationError as error:
        message = str(error.errors()[0].get("msg", "not a valid event")).removeprefix("Value error, ")
        raise EventRejectedError("fraction" if "fraction" in message else "kind", message) from None
    if kind == "dry_weight_sample":
        value = params.get("g_per_l")
        low, high = SENSORS["dry_weight"].range
        if not isinstance(value, int | float) or isinstance(value, bool) or not low <= value <= high:
            raise EventRejectedError("g_per_l", f"a dry weight must be a number of g/L in [{low:g}, {high:g}] "
                                           f"(got {value!r})")  # fmt: skip
    if kind == "calibration" and params.get("sensor") is not None and params["sensor"] not in SENSORS:
        raise EventRejectedError("sensor", f"a calibration names a catalog sensor, or none for every probe "
                                           f"(got {params['sensor']!r}); the catalog has {', '.join(SENSORS)}")
    return event


def record_event(store: Store, pipeline: LivePipeline | None, unit_id: str, kind: str, params: dict,
                 time: datetime) -> bool:  # fmt: skip
    """Check (module doc), store and pass on one event; True when it was new."""
    event = checked_event(kind, params, time)
    time_us = to_time_us(time)
    stored = StoredEvent(unit_id, time_us, event.kind, dict(event.params))
    new = store.write_events([stored])
    if event.kind == "dry_weight_sample":
        store.write_readings(ReadingBatch([unit_id], ["dry_weight"], [time_us], [float(params["g_per_l"])], [0]))
    if pipeline is not None:
        pipeline.submit(ReadingBatch([], [], [], [], []), [stored])
    return bool(new)


__all__ = ["EventRejectedError", "checked_event", "record_event"]
