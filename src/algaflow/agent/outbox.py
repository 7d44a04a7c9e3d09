"""The on-device outbox: frames are written here first (SQLite, WAL, synchronous=FULL: on disk before the
driver's next reading), sent oldest first, and deleted only when the server acknowledges their seqs.

``seq`` is the unit's frame counter: it only grows, also across restarts of the agent (the next value is
kept in the same transaction as the frame), so the server can tell a resend from a new frame.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (seq INTEGER PRIMARY KEY, payload TEXT NOT NULL, sent_at REAL NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS counter (unit_id TEXT PRIMARY KEY, next_seq INTEGER NOT NULL);
"""


class Outbox:
    """Module doc. Safe to use from the agent's loop and its transport's callback thread."""

    def __init__(self, path: str | Path, unit_id: str) -> None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        self.unit_id = unit_id
        self._connection = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
        self._connection.execute("PRAGMA journal_mode=WAL")
        self._connection.execute("PRAGMA synchronous=FULL")
        self._connection.executescript(SCHEMA)
        self._lock = threading.Lock()

    def put(self, time: datetime, readings: dict[str, float], events: Sequence[dict] = ()) -> int:
        """Keep one frame; returns its seq."""
        return self.put_many([(time, readings, events)])[-1]

    def put_many(self, samples: Sequence[tuple[datetime, dict[str, float], Sequence[dict]]]) -> list[int]:
        """Keep several frames in one transaction; returns their seqs."""
        with self._lock:
            connection = self._connection
            connection.execute("BEGIN IMMEDIATE")
            try:
                row = connection.execute("SELECT next_seq FROM counter WHERE unit_id = ?", (self.unit_id,)).fetchone()
                seq = 0 if row is None else row[0]
                seqs = []
                for moment, readings, events in samples:
                    payload = {"unit_id": self.unit_id, "time": moment.isoformat(), "seq": seq,
                               "readings": readings, "events": list(events)}  # fmt: skip
                    connection.execute("INSERT INTO outbox (seq, payload) VALUES (?, ?)",
                                       (seq, json.dumps(payload, separators=(",", ":"))))  # fmt: skip
                    seqs.append(seq)
                    seq += 1
                connection.execute("INSERT OR REPLACE INTO counter VALUES (?, ?)", (self.unit_id, seq))
                connection.execute("COMMIT")
            except BaseException:
                connection.execute("ROLLBACK")
                raise
        return seqs

    def due(self, limit: int, resend_after_s: float, window: int | None = None) -> list[tuple[int, str]]:
        """Up to ``limit`` frames, oldest first, never sent or sent more than ``resend_after_s`` ago, among the
        ``window`` oldest frames not yet acknowledged (flow control: while the server is away nothing newer
        than the window leaves the device, so a broker's bounded queue never drops a frame and frames arrive
        in order)."""
        window = window or 2**62
        with self._lock:
            return self._connection.execute(
                "SELECT seq, payload FROM (SELECT seq, payload, sent_at FROM outbox ORDER BY seq LIMIT ?) "
                "WHERE sent_at <= ? ORDER BY seq LIMIT ?", (window, time.time() - resend_after_s, limit)).fetchall()

    def mark_sent(self, seqs: Sequence[int]) -> None:
        now = time.time()
        with self._lock:
            self._connection.executemany("UPDATE outbox SET sent_at = ? WHERE seq = ?", [(now, s) for s in seqs])

    def resend_all(self) -> None:
        """Everything not acknowledged is due again (after a reconnect), still oldest first."""
        with self._lock:
            self._connection.execute("UPDATE outbox SET sent_at = 0")

    def acknowledge(self, ranges: Sequence[Sequence[int]]) -> int:
        """Delete the frames whose seqs lie in the [first, last] ranges; returns how many were deleted."""
        with self._lock:
            before = self._connection.total_changes
            self._connection.executemany("DELETE FROM outbox WHERE seq BETWEEN ? AND ?",
                                         [(int(first), int(last)) for first, last in ranges])  # fmt: skip
            return self._connection.total_changes - before

    def pending(self) -> int:
        with self._lock:
            return self._connection.execute("SELECT COUNT(*) FROM outbox").fetchone()[0]

    def next_seq(self) -> int:
        with self._lock:
            row = self._connection.execute("SELECT next_seq FROM counter WHERE unit_id = ?", (self.unit_id,)).fetchone()
        return 0 if row is None else row[0]

    def close(self) -> None:
        self._connection.close()
