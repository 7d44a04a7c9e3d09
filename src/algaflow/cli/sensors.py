"""``algaflow sensors report``: each sensor's worth to the biomass and growth-rate estimate, per unit."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from algaflow.catalog import load_strain
from algaflow.cli.fuse import read_telemetry, unit_harvests, unit_readings, unit_recalibrations
from algaflow.cli.table_input import SkippedRows
from algaflow.fusion.sensor_information import SensorReportRow, sensor_report


def report_file(telemetry_path: Path, events_path: Path | None = None, strain_name: str = "chlorella_vulgaris",
                unit: str | None = None, start_h: float | None = None, end_h: float | None = None,
                skipped: SkippedRows | None = None, time_format: str | None = None,
                strict: bool = False) -> dict[str, list[SensorReportRow]]:  # fmt: skip
    """Sensor report per unit over hours [start_h, end_h) from each unit's first sample; rows that cannot be
    used are counted in ``skipped`` (``strict``: refused; cli.table_input)."""
    strain = load_strain(strain_name)
    telemetry, events = read_telemetry(telemetry_path, events_path, skipped, time_format, strict)
    if unit is not None:
        if unit not in set(telemetry["unit_id"]):
            raise ValueError(f"unit {unit!r} is not in {telemetry_path}")
        telemetry = telemetry[telemetry["unit_id"] == unit]
    reports = {}
    for name, rows in telemetry.dropna(subset=["time"]).groupby("unit_id", sort=True):
        origin = rows["time"].min()
        hours = (rows["time"] - origin).dt.total_seconds() / 3600.0
        inside = (hours >= (start_h or 0.0)) & (hours < (end_h if end_h is not None else np.inf))
        rows = rows[inside]
        if rows.empty:
            raise ValueError(f"unit {name}: no samples in the window")
        _, times_h, readings = unit_readings(rows, origin)
        reports[name] = sensor_report(times_h, readings, unit_harvests(events, name, origin), strain,
                                      recalibrations_h=unit_recalibrations(events, name, origin))
    return reports


def report_table(rows: list[SensorReportRow]) -> pd.DataFrame:
    return pd.DataFrame([{
        "sensor": r.sensor, "samples": r.samples, "missing": r.missing_fraction, "stuck": r.stuck_fraction,
        "spikes": r.spike_fraction, "jumps": r.jumps, "saturated": r.saturated_fraction,
        "flagged": r.flagged_fraction, "mu sd alone (1/d)": r.growth_rate_sd_alone * 24,
        "X loss if removed": r.biomass_loss_if_removed, "mu loss if removed": r.growth_rate_loss_if_removed,
        "status": r.status} for r in rows])  # fmt: skip
