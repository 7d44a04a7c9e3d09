"""What the operator's views show, read from the store: each unit's latest estimate with its uncertainty, when
it was last heard from, its alarms (open and past) and its CO2 captured; the fleet's total.

Alarms are the live pipeline's decisions (control.decisions) taken in pairs by the catalog's table
(algaflow.catalog.decisions): ``degas_on`` opens the DO alarm and ``degas_off`` closes it, likewise
``temperature_alarm`` / ``temperature_ok``, the harvest advice ``harvest_ready`` / ``harvest_clear`` and,
one per sensor, ``sensor_fault`` / ``sensor_ok``. An alarm is open while its last decision is the opening
one; an operator's ``alarm_ack`` event (params ``{"kind": ..., "time_us": ...}``, kind the alarm's condition
such as ``degas`` or ``sensor od750``) marks it acknowledged.

Tree equivalent: the US EPA's Greenhouse Gas Equivalencies Calculator (Calculations and References) takes one
acre of average US forest to remove 0.84 t CO2 from the air in a year (0.82–1.06 in other editions); a
unit's captured CO2 over its days of estimates, scaled to a year, is that many acres.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from algaflow.catalog.decisions import DECISION_KINDS, condition_key
from algaflow.store import Store

ACRE_OF_FOREST_T_CO2_PER_YEAR = 0.84  # US EPA, Greenhouse Gas Equivalencies Calculator (forest sequestration)
OFFLINE_AFTER_S = 600.0  # a unit not heard from for this long is shown offline


@dataclass(slots=True)
class Alarm:
    unit_id: str
    kind: str  # the condition (catalog.decisions.condition_key): "degas", "sensor od750", ...
    opened_us: int
    reason: str
    closed_us: int | None = None
    acknowledged: bool = False
    title: str = ""  # the opening decision's title in the catalog
    severity: str = "warning"

    @property
    def open(self) -> bool:
        return self.closed_us is None

    @property
    def label(self) -> str:
        """What an operator reads: the catalog's title, or for a sensor's fault its reason ("od750: reading
        stuck at one value")."""
        return self.reason if self.kind.startswith("sensor ") else (self.title or self.kind)


@dataclass(slots=True)
class UnitStatus:
    """One row of the fleet view."""

    unit_id: str
    strain: str
    site: str
    last_seen_us: int | None
    online: bool
    biomass_g_per_l: float = np.nan
    biomass_sd: float = np.nan
    growth_rate_per_h: float = np.nan
    growth_rate_sd: float = np.nan
    co2_captured_g: float = np.nan
    co2_captured_sd: float = np.nan
    harvest_ready: bool = False
    days_of_data: float = 0.0
    alarms: list[Alarm] = field(default_factory=list)

    @property
    def open_alarms(self) -> list[Alarm]:
        return [alarm for alarm in self.alarms if alarm.open]

    @property
    def tree_acres(self) -> float:
        """Acres of forest that remove as much CO2 in a year as this unit at its rate so far (module doc)."""
        if not self.days_of_data > 0 or not np.isfinite(self.co2_captured_g):
            return np.nan
        tonnes_per_year = self.co2_captured_g / 1e6 * 365.0 / self.days_of_data
        return tonnes_per_year / ACRE_OF_FOREST_T_CO2_PER_YEAR




@dataclass(slots=True)
class ReadEdge:
    """How far a time-ordered record has been read: the last time read and the kinds already read at it, so
    that the next read may start at that time (a row written there later is not missed) and skip the rest."""

    time_us: int | None = None
    kinds: set[str] = field(default_factory=set)

    def is_new(self, time_us: int, kind: str) -> bool:
        """Whether a row, in time order, was not read before; it is read now."""
        if time_us == self.time_us and kind in self.kinds:
            return False
        if time_us != self.time_us:
            self.time_us, self.kinds = time_us, set()
        self.kinds.add(kind)
        return True


@dataclass(slots=True)
class UnitAlarms:
    """One unit's alarms folded from its decisions and events in time order (:func:`alarm_history`'s rule),
    with where the fold has got to, so that later decisions and events can be folded in."""

    unit_id: str
    history: list[Alarm] = field(default_factory=list)
    opened: dict[str, Alarm] = field(default_factory=dict)
    acknowledged: set[tuple[str, int]] = field(default_factory=set)
    decisions_read: ReadEdge = field(default_factory=ReadEdge)
    events_read: ReadEdge = field(default_factory=ReadEdge)

    def fold(self, decisions: pd.DataFrame, events: pd.DataFrame) -> None:
        """Fold in decisions and events (``DECISION_COLUMNS``, ``EVENT_COLUMNS``, by time) not folded yet."""
        for row in decisions.itertuples(index=False):
            time_us = int(row.time_us)
            params = row.params if isinstance(row.params, dict) else {}
            alarm = condition_key(row.kind, params)
            if alarm is None or not self.decisions_read.is_new(time_us, f"{row.kind} {alarm}"):
                continue
            entry = DECISION_KINDS[row.kind]
            opens = entry.opens
            if opens and alarm not in self.opened:
                self.opened[alarm] = Alarm(self.unit_id, alarm, time_us, str(row.reason), title=entry.title,
                                           severity=entry.severity)  # fmt: skip
                self.history.append(self.opened[alarm])
            elif not opens and alarm in self.opened:
                self.opened.pop(alarm).closed_us = time_us
        for row in events.itertuples(index=False):
            if self.events_read.is_new(int(row.time_us), row.kind) and row.kind == "alarm_ack":
                self.acknowledged.add((str(row.params.get("kind")), int(row.params.get("time_us", -1))))
        for alarm in self.history:
            alarm.acknowledged = (alarm.kind, alarm.opened_us) in self.acknowledged


def alarm_history(unit_id: str, decisions: pd.DataFrame, events: pd.DataFrame) -> list[Alarm]:
    """Every alarm a unit's decisions opened, in time order, closed or still open; acknowledged per events."""
    alarms = UnitAlarms(unit_id)
    alarms.fold(decisions, events)
    return alarms.history


class AlarmBook:
    """Every unit's alarms kept between the views' ticks: each tick reads only the decisions and events from
    the last one read on (the pipeline writes a unit's decisions in time order; acknowledgements are
    recorded at the time they are made), instead of every unit's whole record."""

    def __init__(self) -> None:
        self._units: dict[str, UnitAlarms] = {}

    def alarms(self, store: Store, unit_id: str) -> list[Alarm]:
        unit = self._units.setdefault(unit_id, UnitAlarms(unit_id))
        unit.fold(store.decisions(unit_id, start_us=unit.decisions_read.time_us),
                  store.events(unit_id, start_us=unit.events_read.time_us))
        return unit.history


def unit_status(store: Store, unit_id: str, metadata: dict, now_us: int,
                first_estimate_us: dict[str, int] | None = None, heard_us: int | None = None,
                book: AlarmBook | None = None) -> UnitStatus:  # fmt: skip
    """The fleet view's row for one unit (module doc). Online: heard from within ``OFFLINE_AFTER_S`` of
    ``now_us``, by ``heard_us`` (the wall-clock time its last frame arrived, when the service knows it) or
    else by the time of its last frame. ``first_estimate_us`` remembers each unit's first estimate time
    between calls (it never changes), so only the last hours of estimates are read each time; ``book`` keeps
    the alarms between calls (without it the unit's whole record is read)."""
    last = store.last_frame(unit_id)
    last_seen = None if last is None else last[1]
    heard = heard_us if heard_us is not None else last_seen
    site = metadata.get("site") or {}
    status = UnitStatus(unit_id, str(metadata.get("strain", "")), str(site.get("name", "") if isinstance(site, dict)
                                                                     else site), last_seen,
                        heard is not None and (now_us - heard) <= OFFLINE_AFTER_S * 1e6)  # fmt: skip
    if last_seen is not None:
        latest = store.estimates(unit_id, start_us=last_seen - 6 * 3_600_000_000)
        if len(latest):
            row = latest.iloc[-1]
            for name in ("biomass_g_per_l", "biomass_sd", "growth_rate_per_h", "growth_rate_sd", "co2_captured_g",
                         "co2_captured_sd"):  # fmt: skip
                setattr(status, name, float(row[name]))
            status.harvest_ready = bool(row["harvest_ready"])
            known = {} if first_estimate_us is None else first_estimate_us
            if unit_id not in known:
                known[unit_id] = int(store.estimates(unit_id).time_us.iloc[0])
            status.days_of_data = (int(row["time_us"]) - known[unit_id]) / 86_400e6
    status.alarms = (alarm_history(unit_id, store.decisions(unit_id), store.events(unit_id)) if book is None
                     else book.alarms(store, unit_id))  # fmt: skip
    return status


def fleet_status(store: Store, now_us: int, first_estimate_us: dict[str, int] | None = None,
                 heard_us: dict[str, int] | None = None,
                 book: AlarmBook | None = None) -> list[UnitStatus]:  # fmt: skip
    """Every registered unit's row, by unit id (``heard_us``: wall-clock arrival of each unit's last frame)."""
    heard_us = heard_us or {}
    return [unit_status(store, unit_id, metadata, now_us, first_estimate_us, heard_us.get(unit_id), book)
            for unit_id, metadata in sorted(store.units().items())]  # fmt: skip


__all__ = ["ACRE_OF_FOREST_T_CO2_PER_YEAR", "Alarm", "AlarmBook", "UnitAlarms", "UnitStatus", "alarm_history",
           "fleet_status", "unit_status"]
