"""The on-device outbox: frames are written here first (SQLite, WAL, synchronous=FULL: on disk before the
driver's next reading), sent oldest first, and leave it only in one of two ways:

- **acknowledged**: the server says it has stored them. Only a frame that has been *sent* and not yet
  acknowledged can be acknowledged: seqs of an acknowledgement that were never sent (frames still waiting for
  their first send, or seqs beyond the last frame written) are refused (nothing is deleted for them, and they are
  reported back), so a forged or confused acknowledgement cannot delete frames the server never had. Seqs
  below the next seq that are no longer here were sent and have left already: a repeated acknowledgement of
  them is neither deleted again nor refused. "Sent" means handed to the transport at least once
  (``sent_count`` > 0); a frame made due again (:meth:`Outbox.resend_all`, :meth:`Outbox.mark_due`) stays sent,
  since the server may acknowledge its first copy.
- **dead-lettered**: the server refuses it for good (an invalid frame). It is moved, in one transaction, to
  the ``dead_letter`` table of the same file with the reason and the server's detail, and kept there until
  an operator moves it back (:meth:`Outbox.requeue_dead`) or deletes the file; the frames after it flow on.

``seq`` is the unit's frame counter: it only grows, also across restarts of the agent (the next value is
kept in the same transaction as the frame), so the server can tell a resend from a new frame.

An outbox file written by an older agent (no ``sent_count`` column, no ``dead_letter`` table) is upgraded in
place when opened: its frames with ``sent_at`` > 0 count as sent once.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import NamedTuple

SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (seq INTEGER PRIMARY KEY, payload TEXT NOT NULL, sent_at REAL NOT NULL DEFAULT 0,
                                   sent_count INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS counter (unit_id TEXT PRIMARY KEY, next_seq INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS dead_letter (seq INTEGER PRIMARY KEY, payload TEXT NOT NULL, reason TEXT NOT NULL,
                                        detail TEXT NOT NULL, dead_at REAL NOT NULL);
"""
MAX_DETAIL = 1000  # characters of the server's detail kept with a dead letter


class Acknowledged(NamedTuple):
    """What :meth:`Outbox.acknowledge` did: ``deleted`` frames, and the ``refused`` [first, last] ranges of
    seqs that were never sent (sorted, merged)."""

    deleted: int
    refused: list[tuple[int, int]]


class DeadLetter(NamedTuple):
    seq: int
    payload: str
    reason: str  # "HTTP 422", or the MQTT bridge's reason ("invalid", "too_large", ...)
    detail: str  # the server's explanation, at most MAX_DETAIL characters
    dead_at: float  # Unix time it was moved here


class OutboxState(NamedTuple):
    waiting: int  # frames in the outbox (not acknowledged, not dead-lettered)
    sent: int  # of which sent at least once (awaiting an acknowledgement)
    dead: int  # frames in the dead-letter table
    next_seq: int


def merge_ranges(ranges: Sequence[Sequence[int]]) -> list[tuple[int, int]]:
    """Sorted, merged [first, last] ranges (adjacent ones joined); empty ranges (first > last) dropped."""
    merged: list[tuple[int, int]] = []
    for first, last in sorted((int(a), int(b)) for a, b in ranges if int(a) <= int(b)):
        if merged and first <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(merged[-1][1], last))
        else:
            merged.append((first, last))
    return merged


class Outbox:
    """Module doc. Safe to use from the agent's loop and its transport's callback thread."""

    def __init__(self, path: str | Path, unit_id: str) -> None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        self.unit_id = unit_id
        self._connection = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
        self._lock = threading.Lock()
        try:
            self._connection.execute("PRAGMA journal_mode=WAL")
            self._connection.execute("PRAGMA synchronous=FULL")
            self._connection.executescript(SCHEMA)
            self._upgrade()
        except BaseException:
            self._connection.close()
            raise

    def _upgrade(self) -> None:
        """Add what an older agent's file lacks (module doc)."""
        with self._transaction() as connection:
            columns = {row[1] for row in connection.execute("PRAGMA table_info(outbox)")}
            if "sent_count" not in columns:
                connection.execute("ALTER TABLE outbox ADD COLUMN sent_count INTEGER NOT NULL DEFAULT 0")
                connection.execute("UPDATE outbox SET sent_count = 1 WHERE sent_at > 0")

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            connection = self._connection
            connection.execute("BEGIN IMMEDIATE")
            try:
                yield connection
                connection.execute("COMMIT")
            except BaseException:
                connection.execute("ROLLBACK")
                raise

    def _next_seq(self, connection: sqlite3.Connection) -> int:
        row = connection.execute("SELECT next_seq FROM counter WHERE unit_id = ?", (self.unit_id,)).fetchone()
        return 0 if row is None else row[0]

    def put(self, time: datetime, readings: dict[str, float], events: Sequence[dict] = ()) -> int:
        """Keep one frame; returns its seq."""
        return self.put_many([(time, readings, events)])[-1]

    def put_many(self, samples: Sequence[tuple[datetime, dict[str, float], Sequence[dict]]]) -> list[int]:
        """Keep several frames in one transaction; returns their seqs."""
        with self._transaction() as connection:
            seq = self._next_seq(connection)
            seqs = []
            for moment, readings, events in samples:
                payload = {"unit_id": self.unit_id, "time": moment.isoformat(), "seq": seq,
                           "readings": readings, "events": list(events)}  # fmt: skip
                connection.execute("INSERT INTO outbox (seq, payload) VALUES (?, ?)",
                                   (seq, json.dumps(payload, separators=(",", ":"))))  # fmt: skip
                seqs.append(seq)
                seq += 1
            connection.execute("INSERT OR REPLACE INTO counter VALUES (?, ?)", (self.unit_id, seq))
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
                "WHERE sent_at <= ? ORDER BY seq LIMIT ?",
                (window, time.time() - resend_after_s, limit),
            ).fetchall()

    def mark_sent(self, seqs: Sequence[int]) -> None:
        """The frames are being handed to the transport now: they count as sent (module doc) and are not due
        again for ``resend_after_s``. Call it before sending, so an acknowledgement racing back finds them sent."""
        now = time.time()
        with self._transaction() as connection:  # one transaction: one write to disk, not one per frame
            connection.executemany("UPDATE outbox SET sent_at = ?, sent_count = sent_count + 1 WHERE seq = ?",
                                   [(now, s) for s in seqs])  # fmt: skip

    def mark_due(self, seqs: Sequence[int]) -> None:
        """The frames are due again now (a send failed); they still count as sent."""
        with self._transaction() as connection:
            connection.executemany("UPDATE outbox SET sent_at = 0 WHERE seq = ?", [(s,) for s in seqs])

    def resend_all(self) -> None:
        """Everything not acknowledged is due again (after a reconnect), still oldest first; still counted as
        sent."""
        with self._lock:
            self._connection.execute("UPDATE outbox SET sent_at = 0")

    def acknowledge(self, ranges: Sequence[Sequence[int]]) -> Acknowledged:
        """Delete the sent frames whose seqs lie in the [first, last] ranges; seqs in them that were never sent
        are refused (module doc). One transaction."""
        deleted, refused = 0, []
        with self._transaction() as connection:
            next_seq = self._next_seq(connection)
            for first, last in merge_ranges(ranges):
                waiting = connection.execute("SELECT seq FROM outbox WHERE seq BETWEEN ? AND ? AND sent_count = 0 "
                                             "ORDER BY seq", (first, last)).fetchall()  # fmt: skip
                refused.extend((seq, seq) for (seq,) in waiting)
                if last >= next_seq:
                    refused.append((max(first, next_seq), last))
                deleted += connection.execute("DELETE FROM outbox WHERE seq BETWEEN ? AND ? AND sent_count > 0",
                                              (first, last)).rowcount  # fmt: skip
        return Acknowledged(deleted, merge_ranges(refused))

    def dead_letter(self, ranges: Sequence[Sequence[int]], reason: str, detail: str) -> int:
        """Move the sent frames whose seqs lie in the [first, last] ranges to the dead-letter table, with the
        ``reason`` and the server's ``detail`` (truncated to MAX_DETAIL characters), in one transaction; returns
        how many moved. Frames never sent, and seqs not in the outbox, are left alone (the server cannot have
        refused them)."""
        moved, now = 0, time.time()
        with self._transaction() as connection:
            for first, last in merge_ranges(ranges):
                connection.execute(
                    "INSERT OR REPLACE INTO dead_letter (seq, payload, reason, detail, dead_at) "
                    "SELECT seq, payload, ?, ?, ? FROM outbox WHERE seq BETWEEN ? AND ? AND "
                    "sent_count > 0",
                    (str(reason), str(detail)[:MAX_DETAIL], now, first, last),
                )
                moved += connection.execute("DELETE FROM outbox WHERE seq BETWEEN ? AND ? AND sent_count > 0",
                                            (first, last)).rowcount  # fmt: skip
        return moved

    def dead_letters(self, last: int | None = None) -> list[DeadLetter]:
        """The dead letters in the order they were refused (then by seq); with ``last``, only the newest ``last``."""
        with self._lock:
            rows = self._connection.execute(
                "SELECT seq, payload, reason, detail, dead_at FROM dead_letter ORDER BY dead_at DESC, seq DESC "
                "LIMIT ?", (-1 if last is None else last,)).fetchall()  # fmt: skip
        return [DeadLetter(*row) for row in reversed(rows)]

    def dead_count(self) -> int:
        with self._lock:
            return self._connection.execute("SELECT COUNT(*) FROM dead_letter").fetchone()[0]

    def requeue_dead(self) -> int:
        """Move every dead letter back into the outbox, due now and counted as never sent (for an operator who
        fixed the cause); one transaction; returns how many."""
        with self._transaction() as connection:
            moved = connection.execute("INSERT OR IGNORE INTO outbox (seq, payload) "
                                       "SELECT seq, payload FROM dead_letter").rowcount  # fmt: skip
            connection.execute("DELETE FROM dead_letter")
        return moved

    def pending(self) -> int:
        """Frames waiting in the outbox (dead letters not included)."""
        with self._lock:
            return self._connection.execute("SELECT COUNT(*) FROM outbox").fetchone()[0]

    def state(self) -> OutboxState:
        with self._lock:
            waiting, sent = self._connection.execute(
                "SELECT COUNT(*), COALESCE(SUM(sent_count > 0), 0) FROM outbox"
            ).fetchone()
            dead = self._connection.execute("SELECT COUNT(*) FROM dead_letter").fetchone()[0]
            next_seq = self._next_seq(self._connection)
        return OutboxState(waiting, sent, dead, next_seq)

    def next_seq(self) -> int:
        with self._lock:
            return self._next_seq(self._connection)

    def close(self) -> None:
        self._connection.close()
