"""A unit's export (service.export) straight from a store, with no web layer: every table in the window, each
file's row count and SHA-256 in the manifest, Parquet and CSV alike."""

import hashlib
import io
import json
import zipfile
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from algaflow.control.decisions import Decision
from algaflow.service.export import export_unit, unit_tables
from algaflow.store import ReadingBatch, StoredEvent, open_store
from algaflow.store.base import ESTIMATE_COLUMNS, to_time_us

T0 = datetime(2026, 10, 31, 23, 0, tzinfo=UTC)
HOUR_US = 3_600_000_000


@pytest.fixture
def store(store_url):
    """r1 with 6 hours of od750 and temp_tank, a harvest, hourly estimates and a decision; r2 with one reading."""
    with open_store(store_url) as opened:
        opened.register_unit("r1", {"strain": "chlorella_vulgaris", "volume_l": 80.0})
        opened.register_unit("r2", {"strain": "chlorella_vulgaris"})
        times = to_time_us(T0) + np.arange(0, 6 * HOUR_US, HOUR_US // 4)
        opened.write_readings(ReadingBatch(["r1"] * 2 * times.size, ["od750"] * times.size + ["temp_tank"] * times.size,
                                           np.concatenate([times, times]), np.linspace(0.2, 0.5, 2 * times.size),
                                           np.zeros(2 * times.size)))  # fmt: skip
        opened.write_readings(ReadingBatch(["r2"], ["od750"], [int(times[0])], [0.3], [0]))
        opened.write_events([StoredEvent("r1", int(times[8]), "harvest_done", {"fraction": 0.4})])
        hourly = times[::4]
        estimates = pd.DataFrame({column: np.full(hourly.size, 0.1) for column in ESTIMATE_COLUMNS[1:]})
        estimates.insert(0, "time_us", hourly)
        opened.write_estimates(estimates.assign(unit_id="r1", harvest_ready=False))
        opened.write_decisions([Decision("r1", int(hourly[3]), "harvest_ready", "growth stopped", {"p": 0.9})])
        yield opened


@pytest.mark.parametrize("file_format", ["parquet", "csv"])
def test_the_export_holds_every_table_with_a_manifest(store, file_format):
    archive = zipfile.ZipFile(io.BytesIO(export_unit(store, "r1", None, None, file_format)))
    names = [f"{table}.{file_format}" for table in ("telemetry", "events", "estimates", "decisions")]
    assert sorted(archive.namelist()) == sorted([*names, "manifest.json"])
    manifest = json.loads(archive.read("manifest.json"))
    assert manifest["unit_id"] == "r1" and manifest["format"] == file_format
    assert manifest["metadata"] == {"strain": "chlorella_vulgaris", "volume_l": 80.0}
    assert manifest["start"] is None and manifest["end"] is None
    rows = {name: manifest["files"][name]["rows"] for name in names}
    assert list(rows.values()) == [48, 1, 6, 1]
    read = pd.read_parquet if file_format == "parquet" else pd.read_csv
    for name in names:
        content = archive.read(name)
        assert hashlib.sha256(content).hexdigest() == manifest["files"][name]["sha256"]
        table = read(io.BytesIO(content))
        assert list(table.columns[:2]) == ["unit_id", "time"] and len(table) == rows[name]
        assert set(table["unit_id"]) == {"r1"}
    events = read(io.BytesIO(archive.read(names[1])))
    assert json.loads(events["params"][0]) == {"fraction": 0.4}


def test_the_window_is_half_open_and_named_in_the_manifest(store):
    start, end = to_time_us(T0 + timedelta(hours=1)), to_time_us(T0 + timedelta(hours=3))
    tables = unit_tables(store, "r1", start, end)
    assert len(tables["telemetry"]) == 16 and len(tables["estimates"]) == 2 and len(tables["events"]) == 1
    assert tables["telemetry"]["time"].min() == T0 + timedelta(hours=1)
    assert tables["telemetry"]["time"].max() == T0 + timedelta(hours=2, minutes=45)
    assert str(tables["telemetry"]["time"].dt.tz) == "UTC"
    archive = zipfile.ZipFile(io.BytesIO(export_unit(store, "r1", start, end, "csv")))
    manifest = json.loads(archive.read("manifest.json"))
    assert (manifest["start"], manifest["end"]) == ((T0 + timedelta(hours=1)).isoformat(),
                                                    (T0 + timedelta(hours=3)).isoformat())  # fmt: skip
    assert manifest["files"]["decisions.csv"]["rows"] == 0  # the decision is at 3 h, the end is excluded


def test_an_unknown_format_is_refused(store):
    with pytest.raises(ValueError, match="'xlsx': use parquet or csv"):
        export_unit(store, "r1", None, None, "xlsx")
