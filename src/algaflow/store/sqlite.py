"""SQLite backend, the embedded default: one file in WAL mode, a single batching writer, readers in parallel.

Writes go through one writer thread: each call queues its batch and waits; the writer takes every batch
waiting, stores them in one transaction (synchronous=FULL: on disk before the callers are answered) and
wakes them, so many small concurrent writers cost one fsync together. Readings are keyed by
(unit, sensor, time) in a WITHOUT ROWID table (a range query on one unit's sensor is one index range); a
batch goes through a temporary table, the readings already stored are removed from it, the rest are
inserted and folded into the 1-minute rollups in the same transaction.

The 1-minute rollups are kept an hour to a row: per (unit, sensor, hour) one blob of the hour's 60 minutes,
a (4, 60) float64 array of count, sum, min and max of the good readings (count 0, min +inf, max −inf for an
empty minute). A day of one unit's 20 sensors at 1-minute resolution is then 480 rows to read instead of
28,800, which is what makes the dashboard's query fast in Python.
"""

from __future__ import annotations

import json
import queue
import sqlite3
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from algaflow.catalog.frames import Frame
from algaflow.store.base import (
    DAY_COLUMNS,
    DECISION_COLUMNS,
    DOWNSAMPLED_COLUMNS,
    ESTIMATE_COLUMNS,
    EVENT_COLUMNS,
    FRAME_COLUMNS,
    MINUTE_US,
    READING_COLUMNS,
    IngestBatch,
    Ingested,
    ReadingBatch,
    Store,
    StoredEvent,
    UnknownUnitError,
    check_every_s,
    check_sensors,
    day_floor_sql,
    downsample_source,
    time_window,
)

if TYPE_CHECKING:
    from algaflow.control.decisions import Decision

SCHEMA = """
CREATE TABLE IF NOT EXISTS units (unit_id TEXT PRIMARY KEY, metadata TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS readings (
    unit_id TEXT NOT NULL, sensor TEXT NOT NULL, time_us INTEGER NOT NULL, value REAL NOT NULL,
    quality INTEGER NOT NULL, PRIMARY KEY (unit_id, sensor, time_us)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS rollup_hour (
    unit_id TEXT NOT NULL, sensor TEXT NOT NULL, hour_us INTEGER NOT NULL, minutes BLOB NOT NULL,
    PRIMARY KEY (unit_id, sensor, hour_us)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS events (
    unit_id TEXT NOT NULL, time_us INTEGER NOT NULL, kind TEXT NOT NULL, params TEXT NOT NULL,
    PRIMARY KEY (unit_id, time_us, kind)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS frames (
    arrival INTEGER PRIMARY KEY, unit_id TEXT NOT NULL, seq INTEGER NOT NULL, time_us INTEGER NOT NULL,
    UNIQUE (unit_id, seq));
CREATE TABLE IF NOT EXISTS estimates (
    unit_id TEXT NOT NULL, time_us INTEGER NOT NULL, biomass_g_per_l REAL, biomass_sd REAL, growth_rate_per_h REAL,
    growth_rate_sd REAL, co2_captured_g REAL, co2_captured_sd REAL, harvest_ready INTEGER,
    PRIMARY KEY (unit_id, time_us)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS decisions (
    unit_id TEXT NOT NULL, time_us INTEGER NOT NULL, kind TEXT NOT NULL, reason TEXT NOT NULL, params TEXT NOT NULL,
    PRIMARY KEY (unit_id, time_us, kind)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS state (name TEXT PRIMARY KEY, blob BLOB NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS tokens (token_hash TEXT PRIMARY KEY, record TEXT NOT NULL) WITHOUT ROWID;
"""

INCOMING = """CREATE TEMP TABLE IF NOT EXISTS incoming (
    unit_id TEXT NOT NULL, sensor TEXT NOT NULL, time_us INTEGER NOT NULL, value REAL NOT NULL,
    quality INTEGER NOT NULL, PRIMARY KEY (unit_id, sensor, time_us)) WITHOUT ROWID;
CREATE TEMP TABLE IF NOT EXISTS arriving (
    unit_id TEXT NOT NULL, sensor TEXT NOT NULL, time_us INTEGER NOT NULL, value REAL NOT NULL,
    quality INTEGER NOT NULL);
CREATE TEMP TABLE IF NOT EXISTS hour_keys (
    unit_id TEXT NOT NULL, sensor TEXT NOT NULL, hour_us INTEGER NOT NULL, position INTEGER NOT NULL);"""
# floor to the minute, also for times before 1970 (SQLite's % truncates toward zero)
MINUTE_FLOOR = f"(time_us - ((time_us % {MINUTE_US}) + {MINUTE_US}) % {MINUTE_US})"
HOUR_US = 60 * MINUTE_US
# 16 KiB pages: an hour's rollup blob (1,920 bytes) stays inside its B-tree page instead of an overflow page,
# and a day of one unit's rollups is a few dozen pages to read from disk, not a thousand
PAGE_SIZE = 16384
COUNT, TOTAL, LOW, HIGH = range(4)  # rows of an hour's blob


def empty_hour() -> np.ndarray:
    """The (4, 60) rollup of an hour without readings."""
    return np.array([np.zeros(60), np.zeros(60), np.full(60, np.inf), np.full(60, -np.inf)])


def decode_hours(blobs: Sequence[bytes]) -> np.ndarray:
    """(hours, 4, 60) from the stored blobs."""
    return np.frombuffer(b"".join(blobs), dtype="<f8").reshape(len(blobs), 4, 60)


def _connect(path: str) -> sqlite3.Connection:
    connection = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=30.0)
    connection.execute(f"PRAGMA page_size={PAGE_SIZE}")  # takes effect when the file is created
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
        self._writer_connection.executescript(INCOMING)
        self._migrate_minute_rollups(self._writer_connection)
        self._local = threading.local()
        self._jobs: queue.Queue[_Job | None] = queue.Queue()
        self._writer = threading.Thread(target=self._write_loop, name="algaflow-sqlite-writer", daemon=True)
        self._writer.start()
        self._closed = False

    @staticmethod
    def _migrate_minute_rollups(connection: sqlite3.Connection) -> None:
        """A store written by an earlier algaflow kept a row per minute (``rollup_1min``): fold those rows into
        the hourly blobs once, in one transaction, and drop the old table."""
        if connection.execute("SELECT 1 FROM sqlite_master WHERE name = 'rollup_1min'").fetchone() is None:
            return
        connection.execute("BEGIN IMMEDIATE")
        rows = connection.execute("SELECT unit_id, sensor, minute_us, count, total, low, high FROM rollup_1min "
                                  "ORDER BY unit_id, sensor, minute_us").fetchall()  # fmt: skip
        if rows:
            units, sensors, minute_us, *values = zip(*rows, strict=True)
            minute_us = np.array(minute_us, dtype=np.int64)
            hour_us = minute_us - minute_us % HOUR_US
            blobs: dict[tuple[str, str, int], np.ndarray] = {}
            for k, key in enumerate(zip(units, sensors, hour_us.tolist(), strict=True)):
                hour = blobs.setdefault(key, empty_hour())
                hour[:, (minute_us[k] - key[2]) // MINUTE_US] = [values[row][k] for row in range(4)]
            connection.executemany("INSERT OR REPLACE INTO rollup_hour VALUES (?, ?, ?, ?)",
                                   [(*key, hour.astype("<f8").tobytes()) for key, hour in blobs.items()])  # fmt: skip
        connection.execute("DROP TABLE rollup_1min")
        connection.execute("COMMIT")

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

    def unit(self, unit_id: str) -> dict | None:
        row = self._reader().execute("SELECT metadata FROM units WHERE unit_id = ?", (unit_id,)).fetchone()
        return None if row is None else json.loads(row[0])

    def _check_units(self, connection: sqlite3.Connection, units: set[str]) -> None:
        known = {row[0] for row in connection.execute("SELECT unit_id FROM units")}
        missing = sorted(units - known)
        if missing:
            raise UnknownUnitError(f"unit(s) not registered: {', '.join(missing)}")

    # ---- readings -----------------------------------------------------------------------------------------
    @staticmethod
    def _insert_readings(connection: sqlite3.Connection, batch: ReadingBatch) -> int:
        """Inside the writer's transaction. Fast path, for a batch of readings none of which is stored yet (the
        usual case): the rows go into a plain temporary table, from there into the readings and their minute
        rollups. If fewer rows went in than arrived (a resend, or a reading twice in the batch), that is undone
        to the savepoint and the batch takes the careful path: a keyed temporary table (duplicates inside the
        batch fold), the readings already stored removed from it, the rest inserted and rolled up."""
        connection.execute("SAVEPOINT readings")
        connection.executemany("INSERT INTO temp.arriving VALUES (?, ?, ?, ?, ?)", batch.rows())
        new = connection.execute("INSERT OR IGNORE INTO readings SELECT * FROM temp.arriving").rowcount
        if new == len(batch):
            SQLiteStore._roll_up(connection, "temp.arriving")
            connection.execute("RELEASE readings")
            connection.execute("DELETE FROM temp.arriving")
            return new
        connection.execute("ROLLBACK TO readings")  # the temporary rows too
        connection.execute("RELEASE readings")
        connection.executemany("INSERT OR IGNORE INTO temp.incoming VALUES (?, ?, ?, ?, ?)", batch.rows())
        connection.execute("DELETE FROM temp.incoming WHERE EXISTS (SELECT 1 FROM readings r WHERE "
                           "r.unit_id = incoming.unit_id AND r.sensor = incoming.sensor AND "
                           "r.time_us = incoming.time_us)")  # fmt: skip
        new = connection.execute("INSERT INTO readings SELECT * FROM temp.incoming").rowcount
        SQLiteStore._roll_up(connection, "temp.incoming")
        connection.execute("DELETE FROM temp.incoming")
        return new

    @staticmethod
    def _roll_up(connection: sqlite3.Connection, new_readings: str) -> None:
        """Fold the good readings of the table ``new_readings`` (all new) into the hourly blobs of minute
        rollups (module doc): per minute count += n, sum += Σ, min and max widened. The hours touched are read
        in one join, merged as one (hours, 4, 60) array and written back in one statement."""
        minutes = connection.execute(f"SELECT unit_id, sensor, {MINUTE_FLOOR} AS minute, COUNT(*), SUM(value), "
                                     f"MIN(value), MAX(value) FROM {new_readings} WHERE quality = 0 "
                                     "GROUP BY 1, 2, 3 ORDER BY 1, 2, 3").fetchall()  # fmt: skip
        if not minutes:
            return
        units, sensors, minute_us, count, total, low, high = zip(*minutes, strict=True)
        minute_us = np.array(minute_us, dtype=np.int64)
        hour_us = minute_us - minute_us % HOUR_US  # a floor, also before 1970 (NumPy's % takes the divisor's sign)
        slot = (minute_us - hour_us) // MINUTE_US
        series = np.array([f"{unit}\0{sensor}" for unit, sensor in zip(units, sensors, strict=True)], dtype=object)
        new_key = np.r_[True, (hour_us[1:] != hour_us[:-1]) | (series[1:] != series[:-1])]  # rows are sorted
        key_of_row = np.cumsum(new_key) - 1
        firsts = np.flatnonzero(new_key).tolist()
        keys = [(units[k], sensors[k], int(hour_us[k])) for k in firsts]
        connection.execute("DELETE FROM temp.hour_keys")
        connection.executemany("INSERT INTO temp.hour_keys VALUES (?, ?, ?, ?)",
                               [(*key, k) for k, key in enumerate(keys)])  # fmt: skip
        hours = np.broadcast_to(empty_hour(), (len(keys), 4, 60)).copy()
        stored = connection.execute("SELECT k.position, r.minutes FROM temp.hour_keys k JOIN rollup_hour r ON "
                                    "r.unit_id = k.unit_id AND r.sensor = k.sensor AND r.hour_us = k.hour_us")
        stored = stored.fetchall()
        if stored:
            positions, blobs = zip(*stored, strict=True)
            hours[list(positions)] = decode_hours(blobs)
        at = (key_of_row, slot)
        np.add.at(hours[:, COUNT], at, np.array(count, dtype=np.float64))
        np.add.at(hours[:, TOTAL], at, np.array(total, dtype=np.float64))
        np.minimum.at(hours[:, LOW], at, np.array(low, dtype=np.float64))
        np.maximum.at(hours[:, HIGH], at, np.array(high, dtype=np.float64))
        blobs = hours.astype("<f8")
        connection.executemany("INSERT OR REPLACE INTO rollup_hour VALUES (?, ?, ?, ?)",
                               [(*key, blobs[k].tobytes()) for k, key in enumerate(keys)])  # fmt: skip

    @staticmethod
    def _insert_events(connection: sqlite3.Connection, events: Sequence[StoredEvent]) -> int:
        before = connection.total_changes
        connection.executemany("INSERT OR IGNORE INTO events VALUES (?, ?, ?, ?)",
                               [(e.unit_id, int(e.time_us), e.kind, json.dumps(e.params, sort_keys=True))
                                for e in events])  # fmt: skip
        return connection.total_changes - before

    def write_readings(self, batch: ReadingBatch) -> int:
        if len(batch) == 0:
            return 0
        units = set(batch.unit_id.tolist())

        def work(connection: sqlite3.Connection) -> int:
            self._check_units(connection, units)
            return self._insert_readings(connection, batch)

        return self._submit(work)

    def ingest(self, frames: Sequence[Frame] | IngestBatch) -> Ingested:
        batch = frames if isinstance(frames, IngestBatch) else IngestBatch.from_frames(frames)
        if not batch.frames:
            return Ingested(0, 0, 0)
        counts: list[int] = []

        def work(connection: sqlite3.Connection) -> int:
            self._check_units(connection, batch.units())
            before = connection.total_changes
            connection.executemany("INSERT OR IGNORE INTO frames (unit_id, seq, time_us) VALUES (?, ?, ?)",
                                   batch.frames)  # fmt: skip
            counts[:] = [connection.total_changes - before, self._insert_readings(connection, batch.readings),
                         self._insert_events(connection, batch.events)]  # fmt: skip
            return counts[0]

        self._submit(work)
        return Ingested(*counts)

    def frame_log(self, unit_id: str) -> pd.DataFrame:
        rows = self._reader().execute("SELECT seq, time_us FROM frames WHERE unit_id = ? ORDER BY arrival",
                                      (unit_id,)).fetchall()  # fmt: skip
        return pd.DataFrame(rows, columns=list(FRAME_COLUMNS))

    def last_frame(self, unit_id: str) -> tuple[int, int] | None:
        row = self._reader().execute("SELECT seq, time_us FROM frames WHERE unit_id = ? ORDER BY seq DESC "
                                     "LIMIT 1", (unit_id,)).fetchone()  # fmt: skip
        return None if row is None else (int(row[0]), int(row[1]))

    def readings(self, unit_id: str, sensors: Sequence[str] | None = None, start_us: int | None = None,
                 end_us: int | None = None, every_s: int | None = None) -> pd.DataFrame:  # fmt: skip
        check_every_s(every_s)
        sensors = check_sensors(sensors)
        connection = self._reader()
        if connection.execute("SELECT 1 FROM units WHERE unit_id = ?", (unit_id,)).fetchone() is None:
            raise UnknownUnitError(f"unit {unit_id!r} is not registered")
        start, end = time_window(start_us, end_us)
        if every_s is not None:
            rollup_start, from_rollups = downsample_source(start, every_s)
            if from_rollups:
                return self._from_rollups(connection, unit_id, sensors, rollup_start, end, every_s)
        names = sensors if sensors is not None else [row[0] for row in connection.execute(
            "SELECT DISTINCT sensor FROM readings WHERE unit_id = ?", (unit_id,))]  # fmt: skip
        columns = list(READING_COLUMNS if every_s is None else DOWNSAMPLED_COLUMNS)
        rows = [row for sensor in sorted(names)
                for row in self._sensor_rows(connection, unit_id, sensor, start, end, every_s)]  # fmt: skip
        if not rows:
            return pd.DataFrame({c: [] for c in columns})
        values = list(zip(*rows, strict=True))  # one column at a time: far cheaper than row records
        return pd.DataFrame({name: np.array(column, dtype=object if name == "sensor" else None)
                             for name, column in zip(columns, values, strict=True)})  # fmt: skip

    @staticmethod
    def _sensor_rows(connection: sqlite3.Connection, unit_id: str, sensor: str, start: int, end: int,
                     every_s: int | None) -> list[tuple]:  # fmt: skip
        """Raw readings, or buckets (of a length that is not whole minutes) over the raw good readings."""
        if every_s is None:
            return connection.execute("SELECT time_us, sensor, value, quality FROM readings WHERE unit_id = ? AND "
                                      "sensor = ? AND time_us >= ? AND time_us < ? ORDER BY time_us",
                                      (unit_id, sensor, start, end)).fetchall()  # fmt: skip
        bucket = every_s * 1_000_000
        floor = f"(time_us - ((time_us % {bucket}) + {bucket}) % {bucket})"
        return connection.execute(f"SELECT {floor} AS bucket, ?, AVG(value), MIN(value), MAX(value), COUNT(*) "
                                  "FROM readings WHERE unit_id = ? AND sensor = ? AND time_us >= ? AND time_us < ? "
                                  "AND quality = 0 GROUP BY bucket ORDER BY bucket",
                                  (sensor, unit_id, sensor, start, end)).fetchall()  # fmt: skip

    @staticmethod
    def _from_rollups(connection: sqlite3.Connection, unit_id: str, sensors: list[str] | None, start: int, end: int,
                      every_s: int) -> pd.DataFrame:  # fmt: skip
        """Buckets of whole minutes from the hourly blobs: the minutes in [start, end) with readings, summed
        (count, sum) and widened (min, max) per bucket; mean = sum / count."""
        first_hour = start - start % HOUR_US
        chosen = "" if sensors is None else f"AND sensor IN ({', '.join('?' * len(sensors))})"
        rows = connection.execute(f"SELECT sensor, hour_us, minutes FROM rollup_hour WHERE unit_id = ? {chosen} AND "
                                  "hour_us >= ? AND hour_us < ? ORDER BY sensor, hour_us",
                                  (unit_id, *(sensors or ()), first_hour, end)).fetchall()  # fmt: skip
        if not rows:
            return pd.DataFrame({c: [] for c in DOWNSAMPLED_COLUMNS})
        names, hours, blobs = zip(*rows, strict=True)
        minutes = decode_hours(blobs)  # (hours, 4, 60)
        minute_us = (np.array(hours, dtype=np.int64)[:, None] + np.arange(60) * MINUTE_US).ravel()
        names = np.array(names, dtype=object)  # rows come sorted by sensor: a code per run of one sensor
        row_code = np.r_[0, np.cumsum(names[1:] != names[:-1])]
        sensor = np.repeat(row_code, 60)  # integer codes: comparing a million names as objects is slow
        count, total, low, high = (minutes[:, row, :].ravel() for row in (COUNT, TOTAL, LOW, HIGH))
        keep = (count > 0) & (minute_us >= start) & (minute_us < end)
        if not keep.any():
            return pd.DataFrame({c: [] for c in DOWNSAMPLED_COLUMNS})
        minute_us, sensor, count, total, low, high = (a[keep] for a in (minute_us, sensor, count, total, low, high))
        bucket_us = every_s * 1_000_000
        bucket = minute_us - minute_us % bucket_us  # a floor, also before 1970
        starts = np.flatnonzero(np.r_[True, (bucket[1:] != bucket[:-1]) | (sensor[1:] != sensor[:-1])])
        counts = np.add.reduceat(count, starts)
        first_of_code = names[np.flatnonzero(np.r_[True, names[1:] != names[:-1]])]
        return pd.DataFrame({"time_us": bucket[starts], "sensor": first_of_code[sensor[starts]],
                             "mean": np.add.reduceat(total, starts) / counts, "min": np.minimum.reduceat(low, starts),
                             "max": np.maximum.reduceat(high, starts), "count": counts.astype(np.int64)})  # fmt: skip

    def reading_days(self, unit_id: str, start_us: int | None = None, end_us: int | None = None) -> pd.DataFrame:
        start, end = time_window(start_us, end_us)
        day = day_floor_sql("time_us")
        rows = self._reader().execute(f"SELECT {day} AS day, COUNT(*) FROM readings WHERE unit_id = ? AND "
                                      "time_us >= ? AND time_us < ? GROUP BY day ORDER BY day",
                                      (unit_id, start, end)).fetchall()  # fmt: skip
        return pd.DataFrame(rows, columns=list(DAY_COLUMNS), dtype=np.int64)

    # ---- events -------------------------------------------------------------------------------------------
    def write_events(self, events: Sequence[StoredEvent]) -> int:
        if not events:
            return 0

        def work(connection: sqlite3.Connection) -> int:
            self._check_units(connection, {e.unit_id for e in events})
            return self._insert_events(connection, events)

        return self._submit(work)

    def events(self, unit_id: str, start_us: int | None = None, end_us: int | None = None) -> pd.DataFrame:
        start, end = time_window(start_us, end_us)
        rows = self._reader().execute("SELECT time_us, kind, params FROM events WHERE unit_id = ? AND time_us >= ? "
                                      "AND time_us < ? ORDER BY time_us, kind", (unit_id, start, end)).fetchall()
        return pd.DataFrame([(t, k, json.loads(p)) for t, k, p in rows], columns=list(EVENT_COLUMNS))

    # ---- what the live pipeline derives, its state, and tokens ----------------------------------------------
    def write_estimates(self, table: pd.DataFrame) -> int:
        rows = [(str(row[0]), int(row[1]), *map(float, row[2:-1]), int(bool(row[-1])))
                for row in table[["unit_id", *ESTIMATE_COLUMNS]].itertuples(index=False)]  # fmt: skip
        if not rows:
            return 0
        placeholders = ", ".join("?" * (len(ESTIMATE_COLUMNS) + 1))

        def work(connection: sqlite3.Connection) -> int:
            self._check_units(connection, {row[0] for row in rows})
            connection.executemany(f"INSERT OR REPLACE INTO estimates VALUES ({placeholders})", rows)
            return len(rows)

        return self._submit(work)

    def estimates(self, unit_id: str, start_us: int | None = None, end_us: int | None = None) -> pd.DataFrame:
        start, end = time_window(start_us, end_us)
        rows = self._reader().execute(f"SELECT {', '.join(ESTIMATE_COLUMNS)} FROM estimates WHERE unit_id = ? AND "
                                      "time_us >= ? AND time_us < ? ORDER BY time_us", (unit_id, start, end)).fetchall()
        table = pd.DataFrame(rows, columns=list(ESTIMATE_COLUMNS))
        table["harvest_ready"] = table["harvest_ready"].astype(bool)
        return table

    def write_decisions(self, decisions: Sequence[Decision]) -> int:
        if not decisions:
            return 0
        rows = [(d.unit_id, int(d.time_us), d.kind, d.reason, json.dumps(d.params, sort_keys=True)) for d in decisions]

        def work(connection: sqlite3.Connection) -> int:
            self._check_units(connection, {d.unit_id for d in decisions})
            before = connection.total_changes
            connection.executemany("INSERT OR IGNORE INTO decisions VALUES (?, ?, ?, ?, ?)", rows)
            return connection.total_changes - before

        return self._submit(work)

    def decisions(self, unit_id: str, start_us: int | None = None, end_us: int | None = None) -> pd.DataFrame:
        start, end = time_window(start_us, end_us)
        rows = self._reader().execute("SELECT time_us, kind, reason, params FROM decisions WHERE unit_id = ? AND "
                                      "time_us >= ? AND time_us < ? ORDER BY time_us, kind",
                                      (unit_id, start, end)).fetchall()  # fmt: skip
        return pd.DataFrame([(t, k, r, json.loads(p)) for t, k, r, p in rows], columns=list(DECISION_COLUMNS))

    def save_state(self, name: str, blob: bytes) -> None:
        self._submit(lambda connection: connection.execute("INSERT OR REPLACE INTO state VALUES (?, ?)",
                                                           (name, bytes(blob))).rowcount)  # fmt: skip

    def load_state(self, name: str) -> bytes | None:
        row = self._reader().execute("SELECT blob FROM state WHERE name = ?", (name,)).fetchone()
        return None if row is None else bytes(row[0])

    def save_token(self, token_hash: str, record: dict) -> None:
        text = json.dumps(record, sort_keys=True)
        self._submit(lambda connection: connection.execute("INSERT OR REPLACE INTO tokens VALUES (?, ?)",
                                                           (token_hash, text)).rowcount)  # fmt: skip

    def token_record(self, token_hash: str) -> dict | None:
        row = self._reader().execute("SELECT record FROM tokens WHERE token_hash = ?", (token_hash,)).fetchone()
        return None if row is None else json.loads(row[0])

    def tokens(self) -> dict[str, dict]:
        rows = self._reader().execute("SELECT token_hash, record FROM tokens ORDER BY token_hash").fetchall()
        return {token_hash: json.loads(record) for token_hash, record in rows}

    def delete_token(self, token_hash: str) -> bool:
        return bool(self._submit(lambda connection: connection.execute(
            "DELETE FROM tokens WHERE token_hash = ?", (token_hash,)).rowcount))  # fmt: skip

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
