"""The unit view's sensor panel: each sensor's health over the last day (dropouts, stuck runs, spikes, level
jumps, saturation, samples the growth chain set aside), what it is worth to the biomass and growth-rate
estimate (fusion.sensor_information: how much the estimate's sd grows without it) and whether it disagrees
with the rest (a drifting probe); and the calibration the unit's biomass chain uses.

The report is the service's (service.unit_report: on the raw readings of the window, not the downsampled
traces, ranked as ``algaflow sensors report`` ranks them); this module lays it out.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from algaflow.catalog import load_strain, sensors_with_role
from algaflow.fusion.calibration import BIOMASS_SENSOR_UNITS, BiomassCalibration
from algaflow.service.unit_report import unit_sensor_report
from algaflow.store import Store

if TYPE_CHECKING:
    from algaflow.fusion.sensor_information import SensorReportRow

HEALTH_WINDOW_H = 24.0
HOUR_US = 3_600_000_000
COLUMNS = (("sensor", "sensor"), ("status", "status"), ("samples", "samples"), ("missing", "missing"),
           ("stuck", "stuck"), ("spikes", "spikes"), ("jumps", "jumps"), ("saturated", "saturated"),
           ("set aside by the chain", "flagged"), ("μ sd alone (1/d)", "rate_sd"),
           ("biomass sd without it", "biomass_loss"), ("μ sd without it", "rate_loss"))  # fmt: skip
TROUBLE = ("disagrees", "outgrowing", "stuck", "silent")
BIOMASS_SENSORS = sensors_with_role("biomass")


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


def sensor_panel(store: Store, unit_id: str, end_us: int, calibration: BiomassCalibration | None = None,
                 window_h: float = HEALTH_WINDOW_H,
                 metadata: dict | None = None) -> list[dict[str, object]]:  # fmt: skip
    """The unit's sensors over [end − window, end), ranked (module doc; service.unit_report computes it); empty
    if it sent nothing then. ``metadata``: the unit's registered metadata, when the caller has read it already."""
    start_us = end_us - int(window_h * HOUR_US)
    return [panel_row(row) for row in unit_sensor_report(store, unit_id, start_us, end_us, calibration, metadata)]


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
    slope = load_strain(strain_name).biomass_slope(sensor)
    return (f"Calibration in use: {sensor} = {slope:.4g} X ({BIOMASS_SENSOR_UNITS[sensor]} per g/L), the catalog "
            f"slope of {strain_name}; no fitted curve stored (algaflow calibrate --store).")
