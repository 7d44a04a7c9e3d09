"""Recording an operator's event (a harvest done, a manual dry-weight sample, an alarm acknowledged ...),
shared by the HTTP API and the dashboard's forms: checked field by field, stored, and handed to the live
pipeline. A dry-weight sample is also stored as a ``dry_weight`` reading at the sample's time.

Checks, the same as a frame's events (catalog.frames.checked_time and the event table, catalog.events): the
time carries a time zone and lies between 2000-01-01 and the frames' 5-minute clock slack ahead of now; the
kind is in the table and its parameters are the kind's, in their ranges (a harvest or dilution fraction in
(0, 1), a dry weight in the catalog's plausible range for ``dry_weight``, a calibration naming a catalog
sensor or none: every probe of the unit).
"""

from __future__ import annotations

from datetime import UTC, datetime

from algaflow.catalog.events import EventParamsError, check_params
from algaflow.catalog.frames import FrameEvent, checked_time
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
    """The event if every check of the module doc passes, else :class:`EventRejectedError` naming the field
    (``time``, ``kind``, ``params`` or the parameter's own name: ``fraction``, ``g_per_l``, ``sensor`` ...)."""
    if time.tzinfo is None:
        raise EventRejectedError("time", "the time must carry a time zone")
    try:
        checked_time(time, now or datetime.now(UTC))
    except ValueError as error:
        raise EventRejectedError("time", str(error)) from None
    try:
        check_params(kind, params)
    except EventParamsError as error:
        raise EventRejectedError(error.field.removeprefix("params."), error.message) from None
    return FrameEvent(kind=kind, params=params, time=time)


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
