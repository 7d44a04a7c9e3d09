"""SQLite backend, the embedded default: one file in WAL mode, a single batching writer, readers in parallel.

Writes go through one writer thread: each call queues its batch and waits; the writer takes every batch
waiting, stores them in one transaction (synchronous=FULL: on disk before the callers are answered) and
wakes them, so many small concurrent writers cost one fsync together. Readings are keyed by
(unit, sensor, time) in a WITHOUT ROWID table (a range query on one unit's sensor is one index range); a
batch goes through a temporary table, the readings already stored are removed from it, the rest are
inserted and folded into the 1-minute rollups in the same transaction.
"""

from __future__ import annotations

import json
import queue
import sqlite3
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

import pandas as pd

from algaflow.store.base import (
    DOWNSAMPLED_COLUMNS,
    EVENT_COLUMNS,
    MINUTE_US,
    READING_COLUMNS,
    ReadingBatch,
    Store,
    StoredEvent,
    UnknownUnitError,
    check_every_s,
    check_sensors,
    downsample_source,
    time_window,
)

SCHEMA = """
CREATE TABLE IF NOT EXISTS units (unit_id TEXT PRIMARY KEY, metadata TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS readings (
    unit_id TEXT NOT NULL, sensor TEXT NOT NULL, time_us INTEGER NOT NULL, value REAL NOT NULL,
    quality INTEGER NOT NULL, PRIMARY KEY (unit_id, sensor, time_us)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS rollup_1min (
    unit_id TEXT NOT NULL, sensor TEXT NOT NULL, minute_us INTEGER NOT NULL, count INTEGER NOT NULL,
    total REAL NOT NULL, low REAL NOT NULL, high REAL NOT NULL,
    PRIMARY KEY (unit_id, sensor, minute_us)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS events (
    unit_id TEXT NOT NULL, time_us INTEGER NOT NULL, kind TEXT NOT NULL, params TEXT NOT NULL,
    PRIMARY KEY (unit_id, time_us, kind)) WITHOUT ROWID;
"""

INCOMING = """CREATE TEMP TABLE IF NOT EXISTS incoming (
    unit_id TEXT NOT NULL, sensor TEXT NOT NULL, time_us INTEGER NOT NULL, value REAL NOT NULL,
    quality INTEGER NOT NULL, PRIMARY KEY (unit_id, sensor, time_us)) WITHOUT ROWID"""
# floor to the minute, also for times before 1970 (SQLite's % truncates toward zero)
MINUTE_FLOOR = f"(time_us - ((time_us % {MINUTE_US}) + {MINUTE_US}) % {MINUTE_US})"


def _connect(path: str) -> sqlite3.Connection:
    connection = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=30.0)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=FULL")
    connection.execute("PRAGMA busy_timeout=30000")
    return connection


class _Job:
    __slots__ = ("done", "error", "result", "work")

    def __init__(self, work: Callable[[sqlite3.Connection], int]) -> None:
        self.work = work
        self.done = threading.Event()
        self.result = 0
        self.error: BaseException | None = None


class SQLiteStore(Store):
    name = "sqlite"

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._writer_connection = _connect(self.path)
        self._writer_connection.executescript(SCHEMA)
        self._writer_connection.execute(INCOMING)
        self._local = threading.local()
        self._jobs: queue.Queue[_Job | None] = queue.Queue()
        self._writer = threading.Thread(target=self._write_loop, name="algaflow-sqlite-writer", daemon=True)
        self._writer.start()
        self._closed = False

    # ---- the single writer -------------------------------------------------------------------------------
    def _write_loop(self) -> None:
        connection = self._writer_connection
        while True:
            job = self._jobs.get()
            if job is None:
                return
            jobs = [job]
            while True:  # everything that queued meanwhile joins this transaction
                try:
                    more = self._jobs.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    self._jobs.put(None)
                    break
                jobs.append(more)
            try:
                connection.execute("BEGIN IMMEDIATE")
                for job in jobs:
                    job.result = job.work(connection)
                connection.execute("COMMIT")
            except BaseException as error:  # handed to the waiting callers
                if connection.in_transaction:
                    connection.execute("ROLLBACK")
                self._retry_one_by_one(connection, jobs, error)
            for job in jobs:
                job.done.set()

    @staticmethod
    def _retry_one_by_one(connection: sqlite3.Connection, jobs: list[_Job], first_error: BaseException) -> None:
        """A failing batch must not take its neighbours down: each job is retried in its own transaction."""
        if len(jobs) == 1:
            jobs[0].error = first_error
            return
        for job in jobs:
            try:
                connection.execute("BEGIN IMMEDIATE")
                job.result = job.work(connection)
                connection.execute("COMMIT")
            except BaseException as error:
                if connection.in_transaction:
                    connection.execute("ROLLBACK")
                job.error = error

    def _submit(self, work: Callable[[sqlite3.Connection], int]) -> int:
        if self._closed:
            raise RuntimeError("this store is closed")
        job = _Job(work)
        self._jobs.put(job)
        job.done.wait()
        if job.error is not None:
            raise job.error
        return job.result

    # ---- readers: one connection per thread ------------------------------------------------------------------
    def _reader(self) -> sqlite3.Connection:
        connection = getattr(self._local, "connection", None)
        if connection is None:
            connection = _connect(self.path) if self.path != ":memory:" else self._writer_connection
            self._local.connection = connection
        return connection

    # ---- units --------------------------------------------------------------------------------------------
    def register_unit(self, unit_id: str, metadata: dict) -> None:
        text = json.dumps(metadata, sort_keys=True)

        def work(connection: sqlite3.Connection) -> int:
            connection.execute("INSERT INTO units VALUES (?, ?) ON CONFLICT (unit_id) DO UPDATE SET "
                               "metadata = excluded.metadata", (unit_id, text))  # fmt: skip
            return 1

        self._submit(work)

    def units(self) -> dict[str, dict]:
        rows = self._reader().execute("SELECT unit_id, metadata FROM units ORDER BY unit_id").fetchall()
        return {unit: json.loads(metadata) for unit, metadata in rows}

    def _check_units(self, connection: sqlite3.Connection, units: set[str]) -> None:
        known = {row[0] for row in connection.execute("SELECT unit_id FROM units")}
        missing = sorted(units - known)
        if missing:
            raise UnknownUnitError(f"unit(s) not registered: {', '.join(missing)}")

    # ---- readings -----------------------------------------------------------------------------------------
    def write_readings(self, batch: ReadingBatch) -> int:
        if len(batch) == 0:
            return 0
        rows = batch.rows()
        units = set(batch.unit_id.tolist())

        def work(connection: sqlite3.Connection) -> int:
            self._check_units(connection, units)
            connection.executemany("INSERT OR IGNORE INTO temp.incoming VALUES (?, ?, ?, ?, ?)", rows)
            connection.execute("DELETE FROM temp.incoming WHERE EXISTS (SELECT 1 FROM readings r WHERE "
                               "r.unit_id = incoming.unit_id AND r.sensor = incoming.sensor AND "
                               "r.time_us = incoming.time_us)")  # fmt: skip
            new = connection.execute("INSERT INTO readings SELECT * FROM temp.incoming").rowcount
            connection.execute(
                f"INSERT INTO rollup_1min SELECT unit_id, sensor, {MINUTE_FLOOR}, COUNT(*), SUM(value), MIN(value), "
                "MAX(value) FROM temp.incoming WHERE quality = 0 GROUP BY 1, 2, 3 "
                "ON CONFLICT (unit_id, sensor, minute_us) DO UPDATE SET count = count + excluded.count, "
                "total = total + excluded.total, low = MIN(low, excluded.low), high = MAX(high, excluded.high)")
            connection.execute("DELETE FROM temp.incoming")
            return new

        return self._submit(work)

    def readings(self, unit_id: str, sensors: Sequence[str] | None = None, start_us: int | None = None,
                 end_us: int | None = None, every_s: int | None = None) -> pd.DataFrame:  # fmt: skip
        check_every_s(every_s)
        sensors = check_sensors(sensors)
        connection = self._reader()
        if connection.execute("SELECT 1 FROM units WHERE unit_id = ?", (unit_id,)).fetchone() is None:
            raise UnknownUnitError(f"unit {unit_id!r} is not registered")
        start, end = time_window(start_us, end_us)
        names = sensors if sensors is not None else [row[0] for row in connection.execute(
            "SELECT DISTINCT sensor FROM readings WHERE unit_id = ?", (unit_id,))]  # fmt: skip
        columns = list(READING_COLUMNS if every_s is None else DOWNSAMPLED_COLUMNS)
        frames = [pd.DataFrame(self._sensor_rows(connection, unit_id, sensor, start, end, every_s), columns=columns)
                  for sensor in sorted(names)]  # fmt: skip
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame({c: [] for c in columns})

    @staticmethod
    def _sensor_rows(connection: sqlite3.Connection, unit_id: str, sensor: str, start: int, end: int,
                     every_s: int | None) -> list[tuple]:  # fmt: skip
        if every_s is None:
            return connection.execute("SELECT time_us, sensor, value, quality FROM readings WHERE unit_id = ? AND "
                                      "sensor = ? AND time_us >= ? AND time_us < ? ORDER BY time_us",
                                      (unit_id, sensor, start, end)).fetchall()  # fmt: skip
        bucket = every_s * 1_000_000
        start, from_rollups = downsample_source(start, every_s)
        if from_rollups:  # each minute lies in one bucket
            source = ("SELECT minute_us AS t, count AS n, total, low, high FROM rollup_1min WHERE unit_id = ? "
                      "AND sensor = ? AND minute_us >= ? AND minute_us < ?")  # fmt: skip
        else:
            source = ("SELECT time_us AS t, 1 AS n, value AS total, value AS low, value AS high FROM readings "
                      "WHERE unit_id = ? AND sensor = ? AND time_us >= ? AND time_us < ? AND quality = 0")
        floor = f"(t - ((t % {bucket}) + {bucket}) % {bucket})"
        return connection.execute(f"SELECT {floor} AS bucket, ?, SUM(total) / SUM(n), MIN(low), MAX(high), SUM(n) "
                                  f"FROM ({source}) GROUP BY bucket ORDER BY bucket",
                                  (sensor, unit_id, sensor, start, end)).fetchall()  # fmt: skip

    # ---- events -------------------------------------------------------------------------------------------
    def write_events(self, events: Sequence[StoredEvent]) -> int:
        if not events:
            return 0
        rows = [(e.unit_id, int(e.time_us), e.kind, json.dumps(e.params, sort_keys=True)) for e in events]

        def work(connection: sqlite3.Connection) -> int:
            self._check_units(connection, {e.unit_id for e in events})
            before = connection.total_changes
            connection.executemany("INSERT OR IGNORE INTO events VALUES (?, ?, ?, ?)", rows)
            return connection.total_changes - before

        return self._submit(work)

    def events(self, unit_id: str, start_us: int | None = None, end_us: int | None = None) -> pd.DataFrame:
        start, end = time_window(start_us, end_us)
        rows = self._reader().execute("SELECT time_us, kind, params FROM events WHERE unit_id = ? AND time_us >= ? "
                                      "AND time_us < ? ORDER BY time_us, kind", (unit_id, start, end)).fetchall()
        return pd.DataFrame([(t, k, json.loads(p)) for t, k, p in rows], columns=list(EVENT_COLUMNS))

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._jobs.put(None)
        self._writer.join()
        self._writer_connection.close()
        connection = getattr(self._local, "connection", None)
        if connection is not None and connection is not self._writer_connection:
            connection.close()
