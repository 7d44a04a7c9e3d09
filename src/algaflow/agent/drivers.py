"""Where readings come from. A driver answers :meth:`Driver.poll` with the samples that are due by now, each
(time, {catalog sensor: value}, [events]), and may act on commands from the server (:meth:`Driver.apply`).

- :class:`TableDriver` plays a long-format table (DESIGN.md §5: unit_id, time, sensor, value), re-timed to
  start at ``start`` and played ``speed`` times faster than real time, never ahead of the clock;
  :func:`replay_driver` reads it from a CSV or Parquet file, :func:`simulated_driver` from the simulator.
- Real sensors: subclass :class:`Driver`, read the hardware in ``poll`` (Modbus, I2C, a serial
  spectrophotometer ...) and return catalog names in catalog units; register the class in ``DRIVERS``.
"""

from __future__ import annotations

import json
import logging
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from algaflow.catalog import SENSORS
from algaflow.catalog.events import EVENT_KINDS

log = logging.getLogger("algaflow.agent")
Sample = tuple[datetime, dict[str, float], list[dict]]


class Driver:
    """A source of samples for one unit (module doc)."""

    finished = False

    def poll(self, now: datetime) -> list[Sample]:
        raise NotImplementedError

    def apply(self, command: dict) -> None:
        """Act on a command from the server; the default logs it (a real driver would switch the degasser)."""
        log.info("command for this unit: %s", command)


class TableDriver(Driver):
    """Play a long-format table (module doc)."""

    def __init__(self, telemetry: pd.DataFrame, events: pd.DataFrame | None = None,
                 start: datetime | None = None, speed: float = 1.0,
                 frame_period_s: float | None = None) -> None:  # fmt: skip
        """``frame_period_s``: gather the readings of each period into one frame at the period's start, as an
        agent polling its sensors on a tick does (default: a frame per distinct reading time)."""
        if speed <= 0:
            raise ValueError(f"speed must be > 0 (got {speed})")
        if frame_period_s is not None and not frame_period_s > 0:
            raise ValueError(f"frame_period_s must be > 0 (got {frame_period_s})")
        unknown = sorted(set(telemetry.sensor) - set(SENSORS))
        if unknown:
            raise ValueError(f"unknown sensor(s) {', '.join(unknown)} in the table; the catalog has "
                             f"{', '.join(SENSORS)}")  # fmt: skip
        times = pd.to_datetime(telemetry.time, utc=True)
        if frame_period_s is not None:
            times = times.dt.floor(pd.Timedelta(seconds=frame_period_s))
        origin = times.min()
        wide = telemetry.assign(time=times).pivot_table(index="time", columns="sensor", values="value",
                                                        aggfunc="first").sort_index()  # fmt: skip
        self._offsets = (wide.index - origin).total_seconds().to_numpy()
        self._values = wide.to_numpy(dtype=float)
        self._sensors = list(wide.columns)
        self._events: list[tuple[float, dict]] = []
        if events is not None and len(events):
            for row in events.itertuples(index=False):
                if row.kind not in EVENT_KINDS:  # the simulator's own markers (fault windows) are not reported
                    continue
                params = row.params if isinstance(row.params, dict) else json.loads(row.params or "{}")
                offset = (pd.Timestamp(row.time).tz_convert(UTC) - origin).total_seconds()
                self._events.append((offset, {"kind": row.kind, "params": params}))
            self._events.sort(key=lambda e: e[0])
        self.start = start or datetime.now(UTC)
        self.speed = speed
        self._wall_start = datetime.now(UTC)
        self._next = 0
        self._next_event = 0

    def resume_at(self, moment: datetime) -> int:
        """Go on from ``moment`` (what was delivered before a restart): the rows re-timed at or before it and
        their events are dropped, and the accelerated clock continues from it instead of from ``start``.
        Returns how many rows were dropped."""
        reached = (moment - self.start).total_seconds()
        self._wall_start = datetime.now(UTC) - timedelta(seconds=max(reached, 0.0) / self.speed)
        end = int(np.searchsorted(self._offsets, reached, side="right"))
        dropped = max(0, end - self._next)
        self._next = max(self._next, end)
        while self._next_event < len(self._events) and self._events[self._next_event][0] <= reached:
            self._next_event += 1
        self.finished = self._next >= len(self._offsets)
        return dropped

    def poll(self, now: datetime) -> list[Sample]:
        """The rows whose re-timed time is due: start + offset ≤ start + speed × (wall time elapsed), and ≤ now."""
        reached = min((now - self._wall_start).total_seconds() * self.speed, (now - self.start).total_seconds())
        end = int(np.searchsorted(self._offsets, reached, side="right"))
        samples = []
        for k in range(self._next, end):
            row = self._values[k]
            readings = {s: float(v) for s, v in zip(self._sensors, row, strict=True) if not np.isnan(v)}
            events = []
            while self._next_event < len(self._events) and self._events[self._next_event][0] <= self._offsets[k]:
                events.append(self._events[self._next_event][1])
                self._next_event += 1
            samples.append((self.start + timedelta(seconds=float(self._offsets[k])), readings, events))
        self._next = max(self._next, end)
        self.finished = self._next >= len(self._offsets)
        return samples


def read_table(path: str | Path) -> pd.DataFrame:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such file: {path}")
    return pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)


def replay_driver(path: str | Path, unit: str | None = None, start: datetime | None = None, speed: float = 1.0,
                  events_path: str | Path | None = None) -> TableDriver:  # fmt: skip
    """Replay a telemetry file (CSV or Parquet, long format); ``unit`` picks one unit of a fleet file."""
    table = read_table(path)
    missing = {"time", "sensor", "value"} - set(table.columns)
    if missing:
        raise ValueError(f"{path}: missing column(s) {', '.join(sorted(missing))} (long format: unit_id, time, "
                         "sensor, value)")  # fmt: skip
    events = read_table(events_path) if events_path else None
    if unit is not None and "unit_id" in table.columns:
        if unit not in set(table.unit_id):
            raise ValueError(f"{path} has no unit {unit!r}; it has {', '.join(sorted(set(table.unit_id))[:10])}")
        table = table[table.unit_id == unit]
        events = None if events is None else events[events.unit_id == unit]
    return TableDriver(table, events, start, speed)


def simulated_driver(days: float = 2.0, seed: int = 0, strain: str | None = None, start: datetime | None = None,
                     speed: float = 1.0, scenario: str | None = None,
                     frame_period_s: float | None = None) -> TableDriver:  # fmt: skip
    """One simulated reactor (the simulator's first unit) as a driver."""
    from algaflow.sim.scenario import load_scenario, parse_scenario
    from algaflow.sim.simulate import simulate

    overrides = {"days": days, "seed": seed, "units": 1, **({"strain": strain} if strain else {})}
    chosen = load_scenario(Path(scenario), **overrides) if scenario else parse_scenario(overrides, "agent")
    with tempfile.TemporaryDirectory(prefix="algaflow-agent-") as folder:
        simulate(chosen, folder)
        telemetry = pd.read_parquet(Path(folder) / "telemetry.parquet")
        events = pd.read_parquet(Path(folder) / "events.parquet")
    return TableDriver(telemetry, events, start, speed, frame_period_s)


DRIVERS = {"simulated": simulated_driver, "replay": replay_driver}
