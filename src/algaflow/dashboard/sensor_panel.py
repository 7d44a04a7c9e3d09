"""The unit view's sensor panel: each sensor's health over the last day (dropouts, stuck runs, spikes, level
jumps, saturation, samples the growth chain set aside), what it is worth to the biomass and growth-rate
estimate (fusion.sensor_information: how much the estimate's sd grows without it) and whether it disagrees
with the rest (a drifting probe); and the calibration the unit's biomass chain uses.

The report runs on the raw readings of the window (not the downsampled traces), ranked as
``algaflow sensors report`` ranks them.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from algaflow.catalog import SENSORS, load_strain
from algaflow.fusion.calibration import BIOMASS_SENSOR_UNITS, BiomassCalibration
from algaflow.fusion.estimator import BIOMASS_SENSORS, calibration_slope, recalibrations_by_sensor
from algaflow.fusion.sensor_information import SensorReportRow, sensor_report
from algaflow.store import Store

HEALTH_WINDOW_H = 24.0
HOUR_US = 3_600_000_000
COLUMNS = (("sensor", "sensor"), ("status", "status"), ("samples", "samples"), ("missing", "missing"),
           ("stuck", "stuck"), ("spikes", "spikes"), ("jumps", "jumps"), ("saturated", "saturated"),
           ("set aside by the chain", "flagged"), ("μ sd alone (1/d)", "rate_sd"),
           ("biomass sd without it", "biomass_loss"), ("μ sd without it", "rate_loss"))  # fmt: skip
TROUBLE = ("disagrees", "outgrowing", "stuck", "silent")


def _percent(fraction: float) -> str:
    return f"{100 * fraction:.0f} %" if np.isfinite(fraction) else "–"


def _growth(loss: float) -> str:
    """The sd's growth without the sensor: +x %, or "all" where nothing else measures it."""
    if not np.isfinite(loss):
        return "all of it" if loss > 0 else "–"
    return f"+{100 * loss:.0f} %" if loss > 0.005 else "none"


def panel_row(row: SensorReportRow) -> dict[str, object]:
    """One report row as the table shows it, every number with its unit."""
    rate_sd = row.growth_rate_sd_alone * 24.0
    biomass_sensor = row.sensor in BIOMASS_SENSORS
    return {"sensor": row.sensor, "status": row.status, "samples": row.samples,
            "missing": _percent(row.missing_fraction), "stuck": _percent(row.stuck_fraction),
            "spikes": _percent(row.spike_fraction), "jumps": row.jumps, "saturated": _percent(row.saturated_fraction),
            "flagged": _percent(row.flagged_fraction) if biomass_sensor else "–",
            "rate_sd": f"{rate_sd:.3f}" if np.isfinite(rate_sd) else "–",
            "biomass_loss": _growth(row.biomass_loss_if_removed) if biomass_sensor else "–",
            "rate_loss": _growth(row.growth_rate_loss_if_removed) if biomass_sensor else "–"}  # fmt: skip


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
                                    for row in rows.itertuples(index=False))


def sensor_panel(store: Store, unit_id: str, end_us: int, calibration: BiomassCalibration | None = None,
                 window_h: float = HEALTH_WINDOW_H,
                 metadata: dict | None = None) -> list[dict[str, object]]:  # fmt: skip
    """The unit's sensors over [end − window, end), ranked (module doc); empty if it sent nothing then.
    ``metadata``: the unit's registered metadata, when the caller has read it already."""
    metadata = (store.unit(unit_id) or {}) if metadata is None else metadata
    start_us = end_us - int(window_h * HOUR_US)
    long = store.readings(unit_id, start_us=start_us, end_us=end_us)
    if long.empty:
        return []
    times_h, readings = wide_readings(long, start_us)
    events = store.events(unit_id, start_us=start_us, end_us=end_us)
    harvests = harvests_since(events, start_us)
    strain = load_strain(str(metadata.get("strain") or "chlorella_vulgaris"))
    calibrations = {calibration.sensor: calibration} if calibration is not None else None
    rows = sensor_report(times_h, readings, harvests, strain, float(metadata.get("volume_l") or 80.0), calibrations,
                         recalibrations_since(events, start_us))
    return [panel_row(row) for row in rows]


def calibration_text(metadata: dict, calibration: BiomassCalibration | None) -> str:
    """Which curve turns the unit's biomass sensor into dry weight, with its uncertainty and provenance."""
    strain_name = str(metadata.get("strain") or "chlorella_vulgaris")
    declared = [s for s in BIOMASS_SENSORS if s in set(metadata.get("sensors") or ())]
    if calibration is not None:
        unit = BIOMASS_SENSOR_UNITS[calibration.sensor]
        sd = np.sqrt(np.diag(np.asarray(calibration.covariance)))
        terms = [f"{calibration.intercept:.4g} ± {sd[0]:.2g}", f"{calibration.slope:.4g} ± {sd[1]:.2g} X"]
        if len(calibration.coefficients) > 2:
            terms.append(f"{calibration.curvature:.4g} ± {sd[2]:.2g} X²")
        low, high = calibration.dry_weight_range
        return (f"Calibration in use: {calibration.sensor} = {' + '.join(terms)} ({unit}, X in g/L), fitted curve "
                f"v{calibration.version} of {calibration.created or 'unknown date'} for {calibration.strain}, from "
                f"{calibration.pairs} paired samples over {low:.3g}–{high:.3g} g/L, residual sd "
                f"{calibration.residual_sd:.2g} {unit}.")  # fmt: skip
    if not declared:
        return "Calibration in use: none yet (the unit has not reported a biomass sensor)."
    sensor = declared[0]
    slope = calibration_slope(sensor, load_strain(strain_name))
    return (f"Calibration in use: {sensor} = {slope:.4g} X ({BIOMASS_SENSOR_UNITS[sensor]} per g/L), the catalog "
            f"slope of {strain_name}; no fitted curve stored (algaflow calibrate --store).")
