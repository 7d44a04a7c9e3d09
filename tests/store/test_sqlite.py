"""SQLite-only: a store written by an earlier algaflow (a rollup row per minute) is migrated to hourly blobs
on opening, and answers its downsampled queries as before."""

import sqlite3

import numpy as np
import pandas as pd

from algaflow.store import ReadingBatch, open_store


def test_minute_rollups_of_an_older_store_are_migrated(tmp_path):
    path = tmp_path / "old.db"
    times = 1_790_000_000_000_000 + np.arange(0, 3 * 3600, 7) * 1_000_000
    rng = np.random.default_rng(0)
    with open_store(path) as store:
        store.register_unit("u", {})
        store.write_readings(ReadingBatch(["u"] * times.size, ["od750"] * times.size, times,
                                          rng.normal(1, 0.1, times.size),
                                          (rng.random(times.size) < 0.1).astype(int)))  # fmt: skip
        want = {every: store.readings("u", every_s=every) for every in (60, 300, 3600)}
    with sqlite3.connect(path) as old:  # the earlier layout, from the same readings
        old.execute("CREATE TABLE rollup_1min (unit_id TEXT, sensor TEXT, minute_us INTEGER, count INTEGER, "
                    "total REAL, low REAL, high REAL, PRIMARY KEY (unit_id, sensor, minute_us)) WITHOUT ROWID")
        old.execute("INSERT INTO rollup_1min SELECT unit_id, sensor, time_us - time_us % 60000000, COUNT(*), "
                    "SUM(value), MIN(value), MAX(value) FROM readings WHERE quality = 0 GROUP BY 1, 2, 3")
        old.execute("DELETE FROM rollup_hour")
    with open_store(path) as store:
        for every, table in want.items():
            pd.testing.assert_frame_equal(store.readings("u", every_s=every), table, rtol=1e-12)
    with sqlite3.connect(path) as migrated:
        assert migrated.execute("SELECT name FROM sqlite_master WHERE name = 'rollup_1min'").fetchall() == []
