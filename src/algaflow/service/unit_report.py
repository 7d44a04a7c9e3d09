"""A unit's sensor report from its stored record (the dashboard's sensor panel shows it): each sensor's health
over a window, what it is worth to the biomass and growth-rate estimate and whether it disagrees with the rest
(fusion.sensor_information.sensor_report, as ``algaflow sensors report`` runs it on a file), on the raw
readings and the events of the window.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from algaflow.catalog import SENSORS, load_strain
from algaflow.fusion.calibration import BiomassCalibration
from algaflow.fusion.estimator import recalibrations_by_sensor
from algaflow.fusion.sensor_information import SensorReportRow, sensor_report
from algaflow.store import Store

HOUR_US = 3_600_000_000


def wide_readings(long: pd.DataFrame, origin_us: int) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Long readings (``READING_COLUMNS``) as sample times in hours after ``origin_us`` and sensor → values
    (NaN where a sensor has no sample at that time); catalog sensors only."""
    long = long[long.sensor.isin(list(SENSORS))]
    table = long.pivot_table(index="time_us", columns="sensor", values="value", aggfunc="last")
    return (table.index.to_numpy() - origin_us) / HOUR_US, {s: table[s].to_numpy() for s in table.columns}


def _params(row) -> dict:
    """A stored event's params (a dict, or its JSON as some backends return it)."""
    return row.params if isinstance(row.params, dict) else json.loads(row.params or "{}")


def harvests_since(events: pd.DataFrame, origin_us: int) -> list[tuple[float, float]]:
    """(hours after ``origin_us``, fraction) of the harvests and dilutions with a known fraction."""
    found = []
    for row in events[events.kind.isin(["harvest", "dilution"])].itertuples(index=False):
        fraction = _params(row).get("fraction")
        if fraction is not None and 0 < float(fraction) < 1:
            found.append(((int(row.time_us) - origin_us) / HOUR_US, float(fraction)))
    return found


def recalibrations_since(events: pd.DataFrame, origin_us: int) -> dict[str, list[float]]:
    """Hours after ``origin_us`` at which each biomass sensor was recalibrated (``calibration`` events)."""
    rows = events[events.kind == "calibration"]
    return recalibrations_by_sensor(((int(row.time_us) - origin_us) / HOUR_US, _params(row))
                                    for row in rows.itertuples(index=False))  # fmt: skip


def unit_sensor_report(store: Store, unit_id: str, start_us: int, end_us: int,
                       calibration: BiomassCalibration | None = None,
                       metadata: dict | None = None) -> list[SensorReportRow]:  # fmt: skip
    """The unit's sensors over [start, end), ranked (module doc); empty if it sent nothing then. ``metadata``:
    the unit's registered metadata (strain, volume), when the caller has read it already."""
    metadata = (store.unit(unit_id) or {}) if metadata is None else metadata
    long = store.readings(unit_id, start_us=start_us, end_us=end_us)
    if long.empty:
        return []
    times_h, readings = wide_readings(long, start_us)
    events = store.events(unit_id, start_us=start_us, end_us=end_us)
    strain = load_strain(str(metadata.get("strain") or "chlorella_vulgaris"))
    calibrations = {calibration.sensor: calibration} if calibration is not None else None
    return sensor_report(times_h, readings, harvests_since(events, start_us), strain,
                         float(metadata.get("volume_l") or 80.0), calibrations,
                         recalibrations_since(events, start_us))  # fmt: skip
