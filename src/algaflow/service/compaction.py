"""The service's periodic lake compaction: every ``[lake] compact_every_s`` a background thread writes the
Parquet partitions of the UTC days that have ended (algaflow.store.lake.compact), so the lake trails the
store by at most a day plus one period. A failure is logged and retried at the next period."""

from __future__ import annotations

import logging
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

from algaflow.store import Store
from algaflow.store.base import to_time_us
from algaflow.store.lake import compact

log = logging.getLogger("algaflow.lake")


class PeriodicCompaction:
    """A daemon thread running :func:`compact` on ``store`` into ``path`` every ``every_s`` seconds."""

    def __init__(self, store: Store, path: Path, every_s: float) -> None:
        if every_s <= 0:
            raise ValueError(f"the compaction period must be positive (got {every_s} s)")
        self.store, self.path, self.every_s = store, path, every_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="algaflow-lake", daemon=True)
        self.runs = 0

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def run_once(self) -> None:
        report = compact(self.store, self.path, until_us=to_time_us(datetime.now(UTC)))
        self.runs += 1
        if report.written:
            log.info("lake %s: %d partitions written (%d readings), %d up to date", self.path, len(report.written),
                     report.rows, report.up_to_date)  # fmt: skip

    def _loop(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                self.run_once()
            except Exception:  # the service keeps running; the next period tries again
                log.exception("lake compaction into %s failed", self.path)
            self._stop.wait(max(0.0, self.every_s - (time.monotonic() - started)))
