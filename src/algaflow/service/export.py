"""A unit's experiment as one file: a zip of its telemetry (DESIGN.md §5 long format plus quality), events,
estimates and decisions, in Parquet or CSV, with ``manifest.json`` (unit metadata, time range, row counts and
the SHA-256 of each file).

Built from a :class:`~algaflow.store.Store` alone, with no web layer: the API's ``GET /units/{u}/export`` and the
dashboard's download buttons serve what :func:`export_unit` returns.
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from datetime import UTC, datetime

import pandas as pd

import algaflow
from algaflow.store import Store

FORMATS = ("parquet", "csv")
TABLES = ("telemetry", "events", "estimates", "decisions")


def unit_tables(store: Store, unit_id: str, start_us: int | None = None, end_us: int | None = None
                ) -> dict[str, pd.DataFrame]:  # fmt: skip
    """The unit's tables between ``start_us`` and ``end_us`` (either open), each led by ``unit_id`` and ``time``
    (UTC); event and decision ``params`` as JSON text."""

    def timed(table: pd.DataFrame) -> pd.DataFrame:
        table = table.copy()
        table.insert(0, "time", pd.to_datetime(table.pop("time_us"), unit="us", utc=True))
        table.insert(0, "unit_id", unit_id)
        return table

    telemetry = timed(store.readings(unit_id, start_us=start_us, end_us=end_us))
    events = timed(store.events(unit_id, start_us, end_us))
    events["params"] = events["params"].map(json.dumps)
    decisions = timed(store.decisions(unit_id, start_us, end_us))
    decisions["params"] = decisions["params"].map(json.dumps)
    return {"telemetry": telemetry, "events": events, "estimates": timed(store.estimates(unit_id, start_us, end_us)),
            "decisions": decisions}  # fmt: skip


def export_unit(store: Store, unit_id: str, start_us: int | None, end_us: int | None, file_format: str) -> bytes:
    """The zip (module doc) of :func:`unit_tables` as ``<table>.<file_format>`` files and ``manifest.json``."""
    if file_format not in FORMATS:
        raise ValueError(f"export format {file_format!r}: use {' or '.join(FORMATS)}")
    tables = unit_tables(store, unit_id, start_us, end_us)
    buffer = io.BytesIO()
    files = {}
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, table in tables.items():
            data = io.BytesIO()
            if file_format == "parquet":
                table.to_parquet(data, index=False)
            else:
                table.to_csv(data, index=False, date_format="%Y-%m-%dT%H:%M:%S.%fZ")
            content = data.getvalue()
            path = f"{name}.{file_format}"
            archive.writestr(path, content)
            files[path] = {"rows": len(table), "sha256": hashlib.sha256(content).hexdigest()}
        manifest = {"unit_id": unit_id, "metadata": store.unit(unit_id) or {},
                    "start": None if start_us is None else datetime.fromtimestamp(start_us / 1e6, UTC).isoformat(),
                    "end": None if end_us is None else datetime.fromtimestamp(end_us / 1e6, UTC).isoformat(),
                    "exported": datetime.now(UTC).isoformat(), "algaflow": algaflow.__version__,
                    "format": file_format, "files": files}  # fmt: skip
        archive.writestr("manifest.json", json.dumps(manifest, indent=2))
    return buffer.getvalue()
