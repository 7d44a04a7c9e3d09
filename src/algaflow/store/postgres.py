"""PostgreSQL backend (psycopg 3): readings in a table partitioned by month of their time, ingest by COPY.

A batch is copied into a temporary table, inserted with ON CONFLICT DO NOTHING (resent readings are
ignored) and the rows actually inserted (RETURNING) are folded into the 1-minute rollups, all in one
transaction committed before the call returns. The month partitions a batch needs are created first,
under an advisory lock so that concurrent writers do not race to create the same one.
``?schema=NAME`` in the URL keeps the tables in their own schema (created if missing).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import numpy as np
import pandas as pd
import psycopg
from psycopg import sql

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
CREATE TABLE IF NOT EXISTS units (unit_id text PRIMARY KEY, metadata jsonb NOT NULL);
CREATE TABLE IF NOT EXISTS readings (
    unit_id text NOT NULL, sensor text NOT NULL, time_us bigint NOT NULL, value double precision NOT NULL,
    quality smallint NOT NULL, PRIMARY KEY (unit_id, sensor, time_us)) PARTITION BY RANGE (time_us);
CREATE TABLE IF NOT EXISTS rollup_1min (
    unit_id text NOT NULL, sensor text NOT NULL, minute_us bigint NOT NULL, count bigint NOT NULL,
    total double precision NOT NULL, low double precision NOT NULL, high double precision NOT NULL,
    PRIMARY KEY (unit_id, sensor, minute_us));
CREATE TABLE IF NOT EXISTS events (
    unit_id text NOT NULL, time_us bigint NOT NULL, kind text NOT NULL, params jsonb NOT NULL,
    PRIMARY KEY (unit_id, time_us, kind));
CREATE TABLE IF NOT EXISTS frames (
    arrival bigserial PRIMARY KEY, unit_id text NOT NULL, seq bigint NOT NULL, time_us bigint NOT NULL,
    UNIQUE (unit_id, seq));
CREATE TABLE IF NOT EXISTS estimates (
    unit_id text NOT NULL, time_us bigint NOT NULL, biomass_g_per_l double precision, biomass_sd double precision,
    growth_rate_per_h double precision, growth_rate_sd double precision, co2_captured_g double precision,
    co2_captured_sd double precision, harvest_ready boolean, PRIMARY KEY (unit_id, time_us));
CREATE TABLE IF NOT EXISTS decisions (
    unit_id text NOT NULL, time_us bigint NOT NULL, kind text NOT NULL, reason text NOT NULL, params jsonb NOT NULL,
    PRIMARY KEY (unit_id, time_us, kind));
CREATE TABLE IF NOT EXISTS state (name text PRIMARY KEY, blob bytea NOT NULL);
CREATE TABLE IF NOT EXISTS tokens (token_hash text PRIMARY KEY, record jsonb NOT NULL);
"""
T = TypeVar("T")
PARTITION_LOCK = 0x616C6761  # advisory lock key for partition creation ("alga")


def _month_bounds_us(time_us: int) -> tuple[int, int, str]:
    moment = datetime.fromtimestamp(time_us // 1_000_000, UTC)
    start = datetime(moment.year, moment.month, 1, tzinfo=UTC)
    end = datetime(moment.year + (moment.month == 12), moment.month % 12 + 1, 1, tzinfo=UTC)
    return int(start.timestamp()) * 1_000_000, int(end.timestamp()) * 1_000_000, f"{moment.year:04d}_{moment.month:02d}"


class PostgresStore(Store):
    name = "postgresql"

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        query = dict(parse_qsl(parts.query))
        self.schema = query.pop("schema", "public")
        conninfo = urlunsplit(parts._replace(scheme="postgresql", query=urlencode(query)))
        self._connection = psycopg.connect(conninfo, autocommit=True)  # transaction() blocks are real BEGIN/COMMIT
        self._lock = threading.Lock()  # one connection, one statement at a time
        self._partitions: set[str] = set()
        with self._lock, self._connection.transaction():
            self._connection.execute(sql.SQL("SELECT pg_advisory_xact_lock({})").format(PARTITION_LOCK))
            self._connection.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(self.schema)))
        self._connection.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(self.schema)))
        with self._lock, self._connection.transaction():
            self._connection.execute(sql.SQL("SELECT pg_advisory_xact_lock({})").format(PARTITION_LOCK))
            self._connection.execute(SCHEMA)

    def _ensure_partitions(self, times_us: np.ndarray) -> None:
        months = {_month_bounds_us(int(t)) for t in np.unique(times_us // (86_400 * 1_000_000) * 86_400 * 1_000_000)}
        needed = [m for m in months if m[2] not in self._partitions]
        if not needed:
            return
        self._connection.execute("SELECT pg_advisory_xact_lock(%s)", (PARTITION_LOCK,))
        for start, end, suffix in needed:
            self._connection.execute(sql.SQL("CREATE TABLE IF NOT EXISTS {} PARTITION OF readings FOR VALUES FROM "
                                             "({}) TO ({})").format(sql.Identifier(f"readings_{suffix}"),
                                                                    start, end))  # fmt: skip
            self._partitions.add(suffix)

    def _check_units(self, units: set[str]) -> None:
        rows = self._connection.execute("SELECT unit_id FROM units WHERE unit_id = ANY(%s)", (sorted(units),))
        missing = sorted(units - {row[0] for row in rows})
        if missing:
            raise UnknownUnitError(f"unit(s) not registered: {', '.join(missing)}")

    def register_unit(self, unit_id: str, metadata: dict) -> None:
        with self._lock, self._connection.transaction():
            self._connection.execute("INSERT INTO units VALUES (%s, %s) ON CONFLICT (unit_id) DO UPDATE SET "
                                     "metadata = excluded.metadata", (unit_id, json.dumps(metadata)))  # fmt: skip

    def units(self) -> dict[str, dict]:
        with self._lock, self._connection.transaction():
            rows = self._connection.execute("SELECT unit_id, metadata FROM units ORDER BY unit_id").fetchall()
        return dict(rows)

    def unit(self, unit_id: str) -> dict | None:
        rows = self._query("SELECT metadata FROM units WHERE unit_id = %s", (unit_id,))
        return rows[0][0] if rows else None

    def _insert_readings(self, batch: ReadingBatch) -> int:
        """Inside a transaction: COPY into a temporary table, insert the new rows, fold them into the rollups."""
        self._ensure_partitions(batch.time_us)
        connection = self._connection
        connection.execute("CREATE TEMP TABLE IF NOT EXISTS incoming (unit_id text, sensor text, "
                           "time_us bigint, value double precision, quality smallint) "
                           "ON COMMIT DELETE ROWS")  # fmt: skip
        with connection.cursor().copy("COPY incoming FROM STDIN") as copy:
            for row in batch.rows():
                copy.write_row(row)
        new = connection.execute(
            "WITH new AS (INSERT INTO readings SELECT DISTINCT ON (unit_id, sensor, time_us) * "
            "FROM incoming ON CONFLICT DO NOTHING RETURNING *), "
            f"rolled AS (INSERT INTO rollup_1min SELECT unit_id, sensor, "
            f"time_us - ((time_us % {MINUTE_US}) + {MINUTE_US}) % {MINUTE_US}, count(*), sum(value), "
            "min(value), max(value) FROM new WHERE quality = 0 GROUP BY 1, 2, 3 "
            "ON CONFLICT (unit_id, sensor, minute_us) DO UPDATE SET "
            "count = rollup_1min.count + excluded.count, total = rollup_1min.total + excluded.total, "
            "low = least(rollup_1min.low, excluded.low), high = greatest(rollup_1min.high, excluded.high)) "
            "SELECT count(*) FROM new").fetchone()[0]  # fmt: skip
        return int(new)

    def _insert_events(self, events: Sequence[StoredEvent]) -> int:
        new = 0
        with self._connection.cursor() as cursor:
            for e in events:
                cursor.execute("INSERT INTO events VALUES (%s, %s, %s, %s) ON CONFLICT DO NOTHING",
                               (e.unit_id, int(e.time_us), e.kind, json.dumps(e.params)))  # fmt: skip
                new += cursor.rowcount
        return new

    def _transaction(self, work: Callable[[], T]) -> T:
        """Run ``work`` in one transaction under the connection's lock; partitions made in a rolled-back
        transaction are forgotten."""
        with self._lock:
            try:
                with self._connection.transaction():
                    return work()
            except BaseException:
                self._partitions.clear()
                raise

    def write_readings(self, batch: ReadingBatch) -> int:
        if len(batch) == 0:
            return 0

        def work() -> int:
            self._check_units(set(batch.unit_id.tolist()))
            return self._insert_readings(batch)

        return self._transaction(work)

    def ingest(self, frames: Sequence[Frame] | IngestBatch) -> Ingested:
        batch = frames if isinstance(frames, IngestBatch) else IngestBatch.from_frames(frames)
        if not batch.frames:
            return Ingested(0, 0, 0)

        def work() -> Ingested:
            self._check_units(batch.units())
            new_frames = 0
            with self._connection.cursor() as cursor:
                cursor.executemany("INSERT INTO frames (unit_id, seq, time_us) VALUES (%s, %s, %s) "
                                   "ON CONFLICT DO NOTHING", batch.frames, returning=False)  # fmt: skip
                new_frames = max(cursor.rowcount, 0)
            return Ingested(new_frames, self._insert_readings(batch.readings) if len(batch.readings) else 0,
                            self._insert_events(batch.events))  # fmt: skip

        return self._transaction(work)

    def frame_log(self, unit_id: str) -> pd.DataFrame:
        rows = self._query("SELECT seq, time_us FROM frames WHERE unit_id = %s ORDER BY arrival", (unit_id,))
        return pd.DataFrame(rows, columns=list(FRAME_COLUMNS))

    def last_frame(self, unit_id: str) -> tuple[int, int] | None:
        rows = self._query("SELECT seq, time_us FROM frames WHERE unit_id = %s ORDER BY seq DESC LIMIT 1",
                           (unit_id,))  # fmt: skip
        return None if not rows else (int(rows[0][0]), int(rows[0][1]))

    def _query(self, statement: str, parameters: tuple) -> list[tuple]:
        with self._lock, self._connection.transaction():
            return self._connection.execute(statement, parameters).fetchall()

    def readings(self, unit_id: str, sensors: Sequence[str] | None = None, start_us: int | None = None,
                 end_us: int | None = None, every_s: int | None = None) -> pd.DataFrame:  # fmt: skip
        check_every_s(every_s)
        sensors = check_sensors(sensors)
        start, end = time_window(start_us, end_us)
        with self._lock, self._connection.transaction():
            connection = self._connection
            if connection.execute("SELECT 1 FROM units WHERE unit_id = %s", (unit_id,)).fetchone() is None:
                raise UnknownUnitError(f"unit {unit_id!r} is not registered")
            if sensors is None:
                sensors = [r[0] for r in connection.execute("SELECT DISTINCT sensor FROM readings WHERE unit_id = %s",
                                                            (unit_id,))]  # fmt: skip
            if every_s is None:
                rows = connection.execute(
                    "SELECT time_us, sensor, value, quality FROM readings WHERE unit_id = %s AND sensor = ANY(%s) "
                    "AND time_us >= %s AND time_us < %s ORDER BY sensor, time_us",
                    (unit_id, sorted(sensors), start, end)).fetchall()  # fmt: skip
                return pd.DataFrame(rows, columns=list(READING_COLUMNS))
            bucket = every_s * 1_000_000
            start, from_rollups = downsample_source(start, every_s)
            if from_rollups:
                source = ("SELECT minute_us AS t, sensor, count AS n, total, low, high FROM rollup_1min "
                          "WHERE unit_id = %s AND sensor = ANY(%s) AND minute_us >= %s AND minute_us < %s")
            else:
                source = ("SELECT time_us AS t, sensor, 1 AS n, value AS total, value AS low, value AS high "
                          "FROM readings WHERE unit_id = %s AND sensor = ANY(%s) AND time_us >= %s AND time_us < %s "
                          "AND quality = 0")  # fmt: skip
            rows = connection.execute(
                f"SELECT t - ((t %% {bucket}) + {bucket}) %% {bucket} AS bucket, sensor, sum(total) / sum(n), "
                f"min(low), max(high), sum(n) FROM ({source}) AS s GROUP BY bucket, sensor ORDER BY sensor, bucket",
                (unit_id, sorted(sensors), start, end)).fetchall()  # fmt: skip
        return pd.DataFrame([(int(b), s, m, lo, hi, int(n)) for b, s, m, lo, hi, n in rows],
                            columns=list(DOWNSAMPLED_COLUMNS))  # fmt: skip

    def reading_days(self, unit_id: str, start_us: int | None = None, end_us: int | None = None) -> pd.DataFrame:
        start, end = time_window(start_us, end_us)
        day = day_floor_sql("time_us").replace("%", "%%")  # psycopg placeholders
        rows = self._query(f"SELECT {day} AS day, count(*) FROM readings WHERE unit_id = %s AND time_us >= %s "
                           "AND time_us < %s GROUP BY day ORDER BY day", (unit_id, start, end))  # fmt: skip
        return pd.DataFrame(rows, columns=list(DAY_COLUMNS), dtype=np.int64)

    def write_events(self, events: Sequence[StoredEvent]) -> int:
        if not events:
            return 0

        def work() -> int:
            self._check_units({e.unit_id for e in events})
            return self._insert_events(events)

        return self._transaction(work)

    def events(self, unit_id: str, start_us: int | None = None, end_us: int | None = None) -> pd.DataFrame:
        start, end = time_window(start_us, end_us)
        with self._lock, self._connection.transaction():
            rows = self._connection.execute("SELECT time_us, kind, params FROM events WHERE unit_id = %s AND "
                                            "time_us >= %s AND time_us < %s ORDER BY time_us, kind",
                                            (unit_id, start, end)).fetchall()  # fmt: skip
        return pd.DataFrame(rows, columns=list(EVENT_COLUMNS))

    def write_estimates(self, table: pd.DataFrame) -> int:
        rows = [(str(row[0]), int(row[1]), *map(float, row[2:-1]), bool(row[-1]))
                for row in table[["unit_id", *ESTIMATE_COLUMNS]].itertuples(index=False)]  # fmt: skip
        if not rows:
            return 0
        columns = ", ".join(ESTIMATE_COLUMNS)
        placeholders = ", ".join(["%s"] * (len(ESTIMATE_COLUMNS) + 1))
        updates = ", ".join(f"{c} = excluded.{c}" for c in ESTIMATE_COLUMNS[1:])

        def work() -> int:
            self._check_units({row[0] for row in rows})
            with self._connection.cursor() as cursor:
                cursor.executemany(f"INSERT INTO estimates (unit_id, {columns}) VALUES ({placeholders}) "
                                   f"ON CONFLICT (unit_id, time_us) DO UPDATE SET {updates}", rows)  # fmt: skip
            return len(rows)

        return self._transaction(work)

    def estimates(self, unit_id: str, start_us: int | None = None, end_us: int | None = None) -> pd.DataFrame:
        start, end = time_window(start_us, end_us)
        rows = self._query(f"SELECT {', '.join(ESTIMATE_COLUMNS)} FROM estimates WHERE unit_id = %s AND "
                           "time_us >= %s AND time_us < %s ORDER BY time_us", (unit_id, start, end))  # fmt: skip
        table = pd.DataFrame(rows, columns=list(ESTIMATE_COLUMNS))
        table["harvest_ready"] = table["harvest_ready"].astype(bool)
        return table

    def write_decisions(self, decisions: Sequence[Decision]) -> int:
        if not decisions:
            return 0

        def work() -> int:
            self._check_units({d.unit_id for d in decisions})
            new = 0
            with self._connection.cursor() as cursor:
                for d in decisions:
                    cursor.execute("INSERT INTO decisions VALUES (%s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
                                   (d.unit_id, int(d.time_us), d.kind, d.reason, json.dumps(d.params)))  # fmt: skip
                    new += cursor.rowcount
            return new

        return self._transaction(work)

    def decisions(self, unit_id: str, start_us: int | None = None, end_us: int | None = None) -> pd.DataFrame:
        start, end = time_window(start_us, end_us)
        rows = self._query("SELECT time_us, kind, reason, params FROM decisions WHERE unit_id = %s AND "
                           "time_us >= %s AND time_us < %s ORDER BY time_us, kind", (unit_id, start, end))  # fmt: skip
        return pd.DataFrame(rows, columns=list(DECISION_COLUMNS))

    def save_state(self, name: str, blob: bytes) -> None:
        self._transaction(lambda: self._connection.execute(
            "INSERT INTO state VALUES (%s, %s) ON CONFLICT (name) DO UPDATE SET blob = excluded.blob",
            (name, bytes(blob))))  # fmt: skip

    def load_state(self, name: str) -> bytes | None:
        rows = self._query("SELECT blob FROM state WHERE name = %s", (name,))
        return bytes(rows[0][0]) if rows else None

    def save_token(self, token_hash: str, record: dict) -> None:
        self._transaction(lambda: self._connection.execute(
            "INSERT INTO tokens VALUES (%s, %s) ON CONFLICT (token_hash) DO UPDATE SET record = excluded.record",
            (token_hash, json.dumps(record))))  # fmt: skip

    def token_record(self, token_hash: str) -> dict | None:
        rows = self._query("SELECT record FROM tokens WHERE token_hash = %s", (token_hash,))
        return rows[0][0] if rows else None

    def tokens(self) -> dict[str, dict]:
        return dict(self._query("SELECT token_hash, record FROM tokens ORDER BY token_hash", ()))

    def delete_token(self, token_hash: str) -> bool:
        return bool(self._transaction(lambda: self._connection.execute(
            "DELETE FROM tokens WHERE token_hash = %s", (token_hash,)).rowcount))  # fmt: skip

    def close(self) -> None:
        self._connection.close()
