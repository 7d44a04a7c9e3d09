"""The service's periodic compaction writes the partitions of the days that have ended, not today's."""

import time
from datetime import UTC, datetime, timedelta

import numpy as np

from algaflow.service.compaction import PeriodicCompaction
from algaflow.store import ReadingBatch, open_store
from algaflow.store.base import to_time_us


def test_ended_days_are_compacted_in_the_background_and_today_waits(tmp_path):
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    times = to_time_us(today - timedelta(days=2)) + np.arange(0, 2 * 86_400e6 + 3_600e6, 600e6).astype(np.int64)
    with open_store(tmp_path / "algaflow.db") as store:
        store.register_unit("r1", {})
        store.write_readings(ReadingBatch(["r1"] * times.size, ["od750"] * times.size, times,
                                          np.linspace(0.1, 1.0, times.size), np.zeros(times.size)))  # fmt: skip
        job = PeriodicCompaction(store, tmp_path / "lake", every_s=0.2)
        job.start()
        deadline = time.monotonic() + 10
        while job.runs < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        job.stop()
    days = sorted(p.name for p in (tmp_path / "lake" / "readings" / "unit_id=r1").iterdir())
    assert job.runs >= 2
    assert days == [f"date={(today - timedelta(days=d)):%Y-%m-%d}" for d in (2, 1)]
