"""``algaflow fuse``: telemetry (and events) in, estimates out (DESIGN.md §5), unit by unit."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.special import ndtr

from algaflow.catalog import SENSORS, load_strain, sensors_with_role
from algaflow.cli.table_input import SkippedRows, checked_rows
from algaflow.control.decisions import Advice, DecisionPolicy, decide_unit
from algaflow.control.harvest import HarvestPolicy, hours_until_growth_stops, recommended_fraction
from algaflow.fusion.calibration import BiomassCalibration
from algaflow.fusion.estimator import BIOMASS_SENSORS, UnitEstimates, estimate_unit, recalibrations_by_sensor
from algaflow.fusion.expected_rate import MODEL_INPUT_SENSORS, ReactorGeometry
from algaflow.fusion.gas_balance import GAS_SENSORS, STORAGE_SENSORS
from algaflow.fusion.growth import dilution_before_samples
from algaflow.service.calibrations import load_calibration

TELEMETRY_COLUMNS = ("unit_id", "time", "sensor", "value")
HOUR_US = 3_600_000_000
EVENT_COLUMNS = ("unit_id", "time", "kind", "params")


def read_table(path: Path, columns: tuple[str, ...], what: str, skipped: SkippedRows | None = None,
               time_format: str | None = None, sensors: frozenset[str] | None = None) -> pd.DataFrame:  # fmt: skip
    """CSV or Parquet by suffix, with the contract's columns checked; rows that cannot be used (cli.table_input:
    times, values, sensors not in ``sensors``, duplicates) are left out and counted in ``skipped``."""
    path = Path(path)
    if not path.exists():
        raise ValueError(f"{what} file {path} does not exist")
    if path.suffix == ".parquet":
        table = pd.read_parquet(path)
    elif path.suffix == ".csv":
        table = pd.read_csv(path)
    else:
        raise ValueError(f"{what} file {path}: use .csv or .parquet")
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise ValueError(f"{what} file {path} lacks column(s) {', '.join(missing)}; expected {', '.join(columns)}")
    table["unit_id"] = table["unit_id"].astype(str)
    return checked_rows(table, skipped if skipped is not None else SkippedRows(), time_format, sensors)


def read_telemetry(telemetry_path: Path, events_path: Path | None, skipped: SkippedRows | None = None,
                   time_format: str | None = None, strict: bool = False
                   ) -> tuple[pd.DataFrame, pd.DataFrame | None]:  # fmt: skip
    """Telemetry (sensor names from the catalog) and, if given, events; the rows neither can use are counted
    in ``skipped`` (with ``strict``, any such row refuses the files, naming the reasons)."""
    skipped = skipped if skipped is not None else SkippedRows()
    telemetry = read_table(telemetry_path, TELEMETRY_COLUMNS, "telemetry", skipped, time_format, frozenset(SENSORS))
    events = (read_table(events_path, EVENT_COLUMNS, "events", skipped, time_format)
              if events_path is not None else None)  # fmt: skip
    if strict and skipped.total:
        raise ValueError(f"{skipped.summary()} (--strict: fix the file, or leave out --strict to skip them)")
    return telemetry, events


def unit_readings(rows: pd.DataFrame, origin: pd.Timestamp) -> tuple[pd.DatetimeIndex, np.ndarray,
                                                                       dict[str, np.ndarray]]:  # fmt: skip
    """One unit's long rows as sample times, hours after ``origin`` and sensor → values (NaN where a sensor
    has no sample at that time; the last of duplicate (time, sensor) rows wins)."""
    table = rows.pivot_table(index="time", columns="sensor", values="value", aggfunc="last")
    times_h = ((table.index - origin).total_seconds() / 3600.0).to_numpy()
    return table.index, times_h, {sensor: table[sensor].to_numpy() for sensor in table.columns}


def event_params(raw: object) -> dict:
    """An event's ``params`` cell as a dict: a JSON object (empty where the cell is empty or missing)."""
    if isinstance(raw, dict):
        return raw
    if not isinstance(raw, str) or not raw.strip():
        return {}
    try:
        params = json.loads(raw)
    except json.JSONDecodeError:
        raise ValueError(f"events: params {raw!r} is not JSON; write a JSON object such as "
                         '{"fraction": 0.7}') from None  # fmt: skip
    if not isinstance(params, dict):
        raise ValueError(f"events: params {raw!r} is not a JSON object; write one such as {{\"fraction\": 0.7}}")
    return params


def unit_harvests(events: pd.DataFrame | None, unit: str, origin: pd.Timestamp) -> list[tuple[float, float]]:
    """(hours after ``origin``, fraction) of the unit's harvest and dilution events with a known fraction."""
    if events is None:
        return []
    rows = events[(events["unit_id"] == unit) & events["kind"].isin(["harvest", "dilution"])]
    harvests = []
    for time, params in zip(rows["time"], rows["params"], strict=True):
        fraction = event_params(params).get("fraction")
        if fraction is not None and 0 < float(fraction) < 1 and pd.notna(time):
            harvests.append(((time - origin).total_seconds() / 3600.0, float(fraction)))
    return harvests


def unit_recalibrations(events: pd.DataFrame | None, unit: str, origin: pd.Timestamp) -> dict[str, list[float]]:
    """Hours after ``origin`` at which each biomass sensor of ``unit`` was recalibrated (its ``calibration``
    events: fusion.estimator.recalibrations_by_sensor)."""
    if events is None:
        return {}
    rows = events[(events["unit_id"] == unit) & (events["kind"] == "calibration") & events["time"].notna()]
    return recalibrations_by_sensor(
        ((time - origin).total_seconds() / 3600.0, event_params(params))
        for time, params in zip(rows["time"], rows["params"], strict=True))


LAB_SENSORS = sensors_with_role("lab")  # manual samples; dry weights are factors on the biomass (dry_weight_at_samples)


def event_dry_weights(events: pd.DataFrame | None) -> pd.DataFrame:
    """The ``dry_weight_sample`` events as ``dry_weight`` telemetry rows (unit_id, time, sensor, value), as the
    service stores them beside the event, so that a dry weight counts whichever way it was recorded."""
    if events is None:
        return pd.DataFrame(columns=list(TELEMETRY_COLUMNS))
    rows = events[(events["kind"] == "dry_weight_sample") & events["time"].notna()]
    values = [event_params(params).get("g_per_l") for params in rows["params"]]
    table = pd.DataFrame({"unit_id": rows["unit_id"].to_numpy(), "time": rows["time"].to_numpy(),
                          "sensor": "dry_weight", "value": pd.to_numeric(pd.Series(values, dtype=object),
                                                                         errors="coerce").to_numpy()})  # fmt: skip
    return table[table["value"].notna()]


def harvest_advice(unit: str, strain, estimates: UnitEstimates, dilution: np.ndarray,
                   policy: HarvestPolicy) -> Advice:  # fmt: skip
    """The harvest advice at each estimate (control.decisions: daily net growth, transients after harvests),
    as the live pipeline gives it."""
    terms = estimates.window_terms or (np.full(estimates.times_h.size, np.nan),) * 3
    columns = np.column_stack([estimates.biomass_g_per_l, estimates.biomass_sd, estimates.growth_rate_per_h,
                               estimates.growth_rate_sd, dilution, *terms])  # fmt: skip
    time_us = np.round(estimates.times_h * HOUR_US).astype(np.int64)
    _, advice = decide_unit(unit, strain, time_us, {}, columns, DecisionPolicy(harvest=policy))
    return advice


def fuse_file(telemetry_path: Path, out: Path, events_path: Path | None = None, strain_name: str = "chlorella_vulgaris",
              smooth: bool = False, volume_l: float = 80.0, policy: HarvestPolicy | None = None,
              progress: Callable[[str], None] | None = None,
              calibration_paths: list[Path] | None = None,
              reactor: ReactorGeometry | None = None, skipped: SkippedRows | None = None,
              time_format: str | None = None, strict: bool = False) -> pd.DataFrame:  # fmt: skip
    """Fuse every unit of a telemetry file and write the estimates (CSV or Parquet by ``out``'s suffix).

    Rows that cannot be used are counted in ``skipped`` (``strict``: refused); ``time_format``: strftime of
    the files' times (default: ISO 8601, or day-first / month-first as the dates allow: cli.table_input).

    ``calibration_paths``: stored biomass calibrations (``algaflow calibrate``), used for their sensors.
    ``reactor``: geometry of the model's light response, where units read ``par_surface`` (default: the lab
    tubular loop; its volumes should add up to ``volume_l``)."""
    out = Path(out)
    if out.suffix not in (".csv", ".parquet"):
        raise ValueError(f"estimates file {out}: use .csv or .parquet")
    strain = load_strain(strain_name)
    calibrations = {}
    for path in calibration_paths or []:
        calibration = load_calibration(path)
        if not isinstance(calibration, BiomassCalibration):
            raise ValueError(f"{path} is a pH calibration; fuse takes biomass sensor calibrations")
        if calibration.strain != strain.name:
            raise ValueError(f"{path} was fitted for {calibration.strain}, not {strain.name}")
        calibrations[calibration.sensor] = calibration
    policy = policy or HarvestPolicy()
    telemetry, events = read_telemetry(telemetry_path, events_path, skipped, time_format, strict)
    kept = BIOMASS_SENSORS + GAS_SENSORS + STORAGE_SENSORS + MODEL_INPUT_SENSORS + LAB_SENSORS
    used = telemetry[telemetry["sensor"].isin(kept)]
    lab = event_dry_weights(events)
    if len(lab):  # a dry weight recorded both as an event and as a reading counts once (the last row wins)
        used = pd.concat([used, lab], ignore_index=True)
    frames = []
    for unit, rows in used.groupby("unit_id", sort=True):
        if not rows["sensor"].isin(BIOMASS_SENSORS).any():
            continue
        rows = rows.sort_values("time", kind="stable")
        origin = rows["time"].dropna().min()
        sample_times, times_h, readings = unit_readings(rows, origin)
        recalibrations = unit_recalibrations(events, unit, origin)
        harvests = unit_harvests(events, unit, origin)
        estimates = estimate_unit(times_h, readings, harvests, strain, volume_l, smooth,
                                  calibrations, reactor=reactor, recalibrations_h=recalibrations)  # fmt: skip
        dilution = dilution_before_samples(estimates.times_h, [t for t, _ in harvests], [f for _, f in harvests])
        advice = harvest_advice(unit, strain, estimates, dilution, policy)
        index = np.searchsorted(times_h, estimates.times_h)
        frames.append(pd.DataFrame({
            "unit_id": unit, "time": sample_times[index],
            "biomass_g_per_l": estimates.biomass_g_per_l, "biomass_sd": estimates.biomass_sd,
            "growth_rate_per_h": estimates.growth_rate_per_h, "growth_rate_sd": estimates.growth_rate_sd,
            "co2_captured_g": estimates.co2_captured_g, "harvest_ready": advice.ready,
            "co2_captured_sd": estimates.co2_captured_sd,
            "daily_growth_per_d": 24 * advice.daily_growth_per_h, "daily_growth_sd": 24 * advice.daily_growth_sd,
            "harvest_probability": ndtr((policy.growth_threshold_per_h - advice.daily_growth_per_h)
                                        / np.maximum(advice.daily_growth_sd, 1e-12)),
            "harvest_forecast_h": hours_until_growth_stops(estimates.times_h, estimates.growth_rate_per_h,
                                                           policy.growth_threshold_per_h),
            "harvest_fraction": recommended_fraction(estimates.biomass_g_per_l, estimates.growth_rate_per_h),
            "co2_gas_balance_g": estimates.co2_gas_balance_g, "co2_gas_balance_sd": estimates.co2_gas_balance_sd,
            "co2_routes_z": estimates.co2_routes_z,
            "sensor": estimates.sensor, "sample_flag": estimates.flags, "drifting_sensors": estimates.drifting,
            "growth_model_inputs": ",".join(estimates.model_sensors),
        }))  # fmt: skip
        if progress is not None:
            progress(unit)
    if not frames:
        raise ValueError(f"no unit in {telemetry_path} has a biomass sensor ({', '.join(BIOMASS_SENSORS)})")
    result = pd.concat(frames, ignore_index=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix == ".parquet":
        result.to_parquet(out, index=False)
    else:
        result.to_csv(out, index=False, date_format="%Y-%m-%dT%H:%M:%S.%fZ")
    return result
