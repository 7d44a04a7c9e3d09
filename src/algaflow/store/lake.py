"""The Parquet lake (DESIGN.md §1): the store's readings compacted into one file per unit and UTC day, for
fleet analytics (pandas, pyarrow, Dask, DuckDB) without touching the live database.

Layout under the lake's root, Hive-partitioned so that any Parquet reader sees ``unit_id`` and ``date``
as columns and can prune on them:

    readings/unit_id=<unit>/date=<YYYY-MM-DD>/readings.parquet   time (UTC, µs), sensor, value, quality
    _compaction.json                                             rows written per unit and day

Compaction is incremental and idempotent. A stored reading never changes (a resend keeps the first value),
so a day's readings are the same set as long as their count is the same: a (unit, day) is written when the
store's count for it differs from the count recorded in ``_compaction.json`` (a new day, or late readings
for an old one), and skipped otherwise. Each file is written beside its final name and renamed over it,
and the record is updated after each file, so an interrupted compaction leaves whole files and is
finished by the next run.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from algaflow.store.base import DAY_US, Store, UnknownUnitError

READINGS_DIR = "readings"
RECORD_FILE = "_compaction.json"
FILE_NAME = "readings.parquet"
FILE_SCHEMA = pa.schema([("time", pa.timestamp("us", tz="UTC")), ("sensor", pa.string()),
                         ("value", pa.float64()), ("quality", pa.int8())])  # fmt: skip
PARTITIONING = ds.partitioning(pa.schema([("unit_id", pa.string()), ("date", pa.string())]), flavor="hive")


@dataclass(slots=True)
class CompactionReport:
    """What one compaction did: partitions written (unit, date, rows) and how many were already up to date."""

    written: list[tuple[str, str, int]] = field(default_factory=list)
    up_to_date: int = 0

    @property
    def rows(self) -> int:
        return sum(rows for _, _, rows in self.written)


def day_name(day_us: int) -> str:
    """The ``date=`` partition of a day starting at ``day_us`` (UTC)."""
    return datetime.fromtimestamp(day_us / 1e6, tz=UTC).strftime("%Y-%m-%d")


def partition_path(root: Path, unit_id: str, day_us: int) -> Path:
    return root / READINGS_DIR / f"unit_id={unit_id}" / f"date={day_name(day_us)}" / FILE_NAME


def _read_record(root: Path) -> dict[str, dict[str, int]]:
    path = root / RECORD_FILE
    if not path.is_file():
        return {}
    return json.loads(path.read_text(encoding="utf-8"))


def _write_atomically(path: Path, write: Callable[[Path], None]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    write(partial)
    os.replace(partial, path)


def _write_record(root: Path, record: dict[str, dict[str, int]]) -> None:
    text = json.dumps(record, indent=1, sort_keys=True)
    _write_atomically(root / RECORD_FILE, lambda p: p.write_text(text, encoding="utf-8"))


def _day_table(store: Store, unit_id: str, day_us: int) -> pa.Table:
    readings = store.readings(unit_id, start_us=day_us, end_us=day_us + DAY_US)
    readings = readings.sort_values(["time_us", "sensor"], kind="stable")
    columns = {"time": readings.time_us.to_numpy("int64"), "sensor": readings.sensor.astype(str).to_numpy(),
               "value": readings.value.to_numpy("float64"), "quality": readings.quality.to_numpy("int8")}
    return pa.table({name: pa.array(values, FILE_SCHEMA.field(name).type) for name, values in columns.items()},
                    schema=FILE_SCHEMA)  # fmt: skip


def compact(store: Store, root: str | Path, units: Iterable[str] | None = None, until_us: int | None = None,
            progress: Callable[[str, str], None] | None = None) -> CompactionReport:  # fmt: skip
    """Write the lake's partitions (module doc) for ``units`` (default all registered) and the UTC days that
    have ended by ``until_us`` (default every day, today's so far included: it is rewritten as it grows);
    ``progress(unit, date)`` is called after each file written."""
    root = Path(root)
    known = store.units()
    chosen = sorted(known) if units is None else list(units)
    missing = [u for u in chosen if u not in known]
    if missing:
        raise UnknownUnitError(f"unit(s) not registered: {', '.join(missing)}")
    record = _read_record(root)
    report = CompactionReport()
    for unit_id in chosen:
        days = store.reading_days(unit_id, end_us=None if until_us is None else (until_us // DAY_US) * DAY_US)
        written = record.setdefault(unit_id, {})
        for day_us, count in zip(days.day_us.tolist(), days["count"].tolist(), strict=True):
            name = day_name(day_us)
            if written.get(name) == count:
                report.up_to_date += 1
                continue
            table = _day_table(store, unit_id, day_us)
            _write_atomically(partition_path(root, unit_id, day_us), lambda p, t=table: pq.write_table(t, p))
            written[name] = table.num_rows
            _write_record(root, record)
            report.written.append((unit_id, name, table.num_rows))
            if progress is not None:
                progress(unit_id, name)
    return report


def read_lake(root: str | Path, units: Iterable[str] | None = None, start: datetime | None = None,
              end: datetime | None = None, sensors: Iterable[str] | None = None) -> pd.DataFrame:  # fmt: skip
    """The lake's readings as one long table (``unit_id, date, time, sensor, value, quality``), pruned to
    ``units``, ``sensors`` and [start, end) (aware datetimes) before anything is read."""
    folder = Path(root) / READINGS_DIR
    if not folder.is_dir():
        raise FileNotFoundError(f"no Parquet lake at {root} (run `algaflow compact` first)")
    dataset = ds.dataset(folder, format="parquet", partitioning=PARTITIONING,
                         exclude_invalid_files=False, ignore_prefixes=[".", "_"])  # fmt: skip
    condition = None
    for term in _filters(units, start, end, sensors):
        condition = term if condition is None else condition & term
    table = dataset.to_table(filter=condition)
    columns = ["unit_id", "date", "time", "sensor", "value", "quality"]
    frame = table.select(columns).to_pandas()
    return frame.sort_values(["unit_id", "time", "sensor"], kind="stable", ignore_index=True)


def _filters(units: Iterable[str] | None, start: datetime | None, end: datetime | None,
             sensors: Iterable[str] | None) -> list[ds.Expression]:  # fmt: skip
    terms = []
    if units is not None:
        terms.append(ds.field("unit_id").isin(list(units)))
    if sensors is not None:
        terms.append(ds.field("sensor").isin(list(sensors)))
    if start is not None:
        start = _utc(start)
        terms += [ds.field("time") >= pa.scalar(start, FILE_SCHEMA.field("time").type),
                  ds.field("date") >= start.strftime("%Y-%m-%d")]  # prunes whole partitions before reading  # fmt: skip
    if end is not None:
        end = _utc(end)
        terms += [ds.field("time") < pa.scalar(end, FILE_SCHEMA.field("time").type),
                  ds.field("date") <= end.strftime("%Y-%m-%d")]  # fmt: skip
    return terms


def _utc(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise ValueError("start and end must carry a time zone")
    return moment.astimezone(UTC)


__all__ = ["CompactionReport", "compact", "day_name", "partition_path", "read_lake"]
