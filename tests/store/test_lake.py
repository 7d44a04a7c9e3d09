"""The Parquet lake: compaction writes one Hive partition per unit and UTC day that any Parquet reader
(here pandas through pyarrow, independently of algaflow's reader) reads back as exactly the store's
readings; a second run writes nothing, late readings rewrite only their day."""

import os
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from algaflow.catalog.frames import OUT_OF_RANGE
from algaflow.store import ReadingBatch, UnknownUnitError, open_store
from algaflow.store.base import to_time_us
from algaflow.store.lake import compact, partition_path, read_lake

T0 = datetime(2026, 10, 30, 20, 0, tzinfo=UTC)


def readings(unit: str, start: datetime, hours: float, every_s: float, sensors=("od750", "ph_tank")) -> pd.DataFrame:
    times = to_time_us(start) + (np.arange(0, hours * 3600, every_s) * 1e6).astype(np.int64)
    rng = np.random.default_rng([ord(c) for c in unit] + [int(start.timestamp())])
    parts = [pd.DataFrame({"unit_id": unit, "sensor": sensor, "time_us": times,
                           "quality": np.where(rng.random(times.size) < 0.05, OUT_OF_RANGE, 0).astype(np.int8),
                           "value": rng.normal(7, 1, times.size)}) for sensor in sensors]  # fmt: skip
    return pd.concat(parts, ignore_index=True)[["unit_id", "sensor", "time_us", "value", "quality"]]  # fmt: skip


def write(store, table: pd.DataFrame) -> None:
    store.write_readings(ReadingBatch(table.unit_id.to_numpy(), table.sensor.to_numpy(), table.time_us.to_numpy(),
                                      table.value.to_numpy(), table.quality.to_numpy()))  # fmt: skip


@pytest.fixture
def store(tmp_path):
    with open_store(tmp_path / "algaflow.db") as opened:
        opened.register_unit("r1", {"strain": "chlorella_vulgaris"})
        opened.register_unit("r2", {"strain": "spirulina"})
        yield opened


def microseconds(times: pd.Series) -> pd.Series:
    return (pd.to_datetime(times, utc=True) - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(microseconds=1)


def as_store_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """Lake rows in the store's terms, sorted: unit_id, sensor, time_us, value, quality."""
    out = pd.DataFrame({"unit_id": frame.unit_id.astype(str), "sensor": frame.sensor.astype(str),
                        "time_us": microseconds(frame.time), "value": frame.value.astype(float),
                        "quality": frame.quality.astype(np.int8)})  # fmt: skip
    return out.sort_values(["unit_id", "sensor", "time_us"], ignore_index=True)


def test_compaction_partitions_by_unit_and_day_and_reads_back_exactly(store, tmp_path):
    table = pd.concat([readings("r1", T0, 30, 30), readings("r2", T0 + timedelta(hours=10), 6, 60)])
    write(store, table)
    lake = tmp_path / "lake"
    report = compact(store, lake)
    assert sorted((u, d) for u, d, _ in report.written) == [
        ("r1", "2026-10-30"), ("r1", "2026-10-31"), ("r1", "2026-11-01"), ("r2", "2026-10-31")]
    assert report.rows == len(table)
    # an independent reader: pandas on the Hive folder, partition columns from the folder names
    read = pd.read_parquet(lake / "readings")
    assert set(read.columns) >= {"unit_id", "date", "time", "sensor", "value", "quality"}
    expected = table.sort_values(["unit_id", "sensor", "time_us"], ignore_index=True)
    pd.testing.assert_frame_equal(as_store_rows(read), expected, check_dtype=False)
    day = read[(read.unit_id.astype(str) == "r1") & (read.date.astype(str) == "2026-10-31")]
    times = pd.to_datetime(day.time, utc=True)
    assert times.min() >= pd.Timestamp("2026-10-31", tz="UTC") and times.max() < pd.Timestamp("2026-11-01", tz="UTC")
    assert len(day) == 2 * 24 * 120  # two sensors every 30 s for the whole day


def test_a_second_run_writes_nothing_and_late_readings_rewrite_only_their_day(store, tmp_path):
    write(store, readings("r1", T0, 30, 60))
    lake = tmp_path / "lake"
    compact(store, lake)
    untouched = partition_path(lake, "r1", to_time_us(datetime(2026, 10, 30, tzinfo=UTC)))
    before = os.stat(untouched).st_mtime_ns
    again = compact(store, lake)
    assert again.written == [] and again.up_to_date == 3
    late = readings("r1", T0 + timedelta(days=1, seconds=30), 2, 600, sensors=("temp_tank",))  # 10-31 20:00–22:00
    write(store, late)
    third = compact(store, lake)
    assert [(u, d) for u, d, _ in third.written] == [("r1", "2026-10-31")] and third.up_to_date == 2
    assert os.stat(untouched).st_mtime_ns == before
    assert microseconds(read_lake(lake, sensors=["temp_tank"]).time).tolist() == sorted(late.time_us.tolist())


def test_read_lake_prunes_units_sensors_and_time(store, tmp_path):
    table = pd.concat([readings("r1", T0, 30, 60), readings("r2", T0, 30, 60)])
    write(store, table)
    compact(store, tmp_path / "lake")
    start, end = T0 + timedelta(hours=5), T0 + timedelta(hours=7)
    got = read_lake(tmp_path / "lake", units=["r2"], start=start, end=end, sensors=["od750"])
    want = table[(table.unit_id == "r2") & (table.sensor == "od750") & (table.time_us >= to_time_us(start))
                 & (table.time_us < to_time_us(end))]  # fmt: skip
    assert len(got) == len(want) == 120
    np.testing.assert_array_equal(got.value.to_numpy(), want.sort_values("time_us").value.to_numpy())
    with pytest.raises(ValueError, match="time zone"):
        read_lake(tmp_path / "lake", start=datetime(2026, 10, 31))
    with pytest.raises(FileNotFoundError, match="algaflow compact"):
        read_lake(tmp_path / "nowhere")


def test_until_keeps_the_unfinished_day_out_and_unknown_units_are_named(store, tmp_path):
    write(store, readings("r1", T0, 30, 300))
    report = compact(store, tmp_path / "lake", until_us=to_time_us(datetime(2026, 11, 1, 2, 0, tzinfo=UTC)))
    assert [d for _, d, _ in report.written] == ["2026-10-30", "2026-10-31"]
    with pytest.raises(UnknownUnitError, match="ghost"):
        compact(store, tmp_path / "lake", units=["r1", "ghost"])
