"""Simulate a scenario for a fleet of units and write telemetry, events and truth (DESIGN.md §5).

Units are integrated in chunks and every file is streamed in row groups, so memory stays bounded by
the chunk, not the fleet: truth of 10,000 units × 30 days at 10 minutes never sits in memory at once.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from algaflow.catalog import SENSORS
from algaflow.model import reactor as r
from algaflow.model.observables import N_OBSERVABLES, OBSERVABLE_NAMES, observe_batch
from algaflow.sim import integrator as integ
from algaflow.sim.build import Batch, build_batch
from algaflow.sim.run import BatchResult, integrate
from algaflow.sim.scenario import Scenario
from algaflow.sim.sensors import UnitTruth, read_sensor
from algaflow.sim.tables import table_value

TIMESTAMP = pa.timestamp("ms", tz="UTC")
TELEMETRY_SCHEMA = pa.schema([("unit_id", pa.string()), ("time", TIMESTAMP), ("sensor", pa.string()),
                              ("value", pa.float64())])  # fmt: skip
EVENTS_SCHEMA = pa.schema([("unit_id", pa.string()), ("time", TIMESTAMP), ("kind", pa.string()),
                           ("params", pa.string())])  # fmt: skip
TRUTH_LEADING = ("biomass_g_per_l", "growth_rate_per_h", "co2_captured_g")
TRUTH_EXTRA = tuple(n for n in OBSERVABLE_NAMES if n not in TRUTH_LEADING)


def unit_id(index: int) -> str:
    return f"unit-{index:05d}"


def _stamps(start: datetime, hours: np.ndarray) -> pa.Array:
    start_ms = int(start.timestamp() * 1000)
    return pa.array(start_ms + np.round(hours * 3_600_000.0).astype(np.int64), type=pa.int64()).cast(TIMESTAMP)


@dataclass(slots=True)
class SimulationSummary:
    """What a run wrote and how the fleet did (per unit arrays)."""

    out_dir: Path
    units: int
    harvests: np.ndarray
    final_biomass_g_per_l: np.ndarray
    co2_captured_g: np.ndarray
    telemetry_rows: int
    accepted_steps: np.ndarray


def observables_for(batch: Batch, result: BatchResult) -> tuple[np.ndarray, np.ndarray]:
    """Observables (units, times, N_OBSERVABLES) and ambient temperature (units, times) on the truth grid."""
    n, n_times = result.states.shape[:2]
    times, values, counts, _, _ = batch.tables
    light = int(batch.controls[0, integ.LIGHT_TABLE])
    ambient = int(batch.controls[0, integ.AMBIENT_TABLE])
    light_profile = np.array([table_value(times[light], values[light], counts[light], t, False)
                              for t in result.times_h])  # fmt: skip
    ambient_profile = np.array([table_value(times[ambient], values[ambient], counts[ambient], t, False)
                                for t in result.times_h])  # fmt: skip
    params = np.repeat(batch.params[:, None, :], n_times, axis=1)
    params[:, :, integ.DYNAMIC_PARAMETERS] = result.dynamic
    par_in = np.maximum(light_profile[None, :] * result.dynamic[:, :, 0], 0.0)
    out = np.empty((n * n_times, N_OBSERVABLES))
    observe_batch(np.ascontiguousarray(result.states.reshape(n * n_times, -1), dtype=float),
                  np.ascontiguousarray(params.reshape(n * n_times, -1)), par_in.reshape(-1), out)  # fmt: skip
    return out.reshape(n, n_times, N_OBSERVABLES), np.broadcast_to(ambient_profile, (n, n_times))


def _event_rows(unit: int, log: np.ndarray, control: np.ndarray,
                scheduled_harvests: dict[float, float]) -> list[tuple[int, float, str, str]]:  # fmt: skip
    """Event-file rows of one unit's log; a harvest records its fraction (the rule's, or the scheduled
    event's from ``scheduled_harvests``: time_h → fraction), so a fuser can move biomass by it."""
    rows = []
    for t, kind_code, value, by_state in log:
        kind = integ.EVENT_KINDS[int(kind_code) - 1]
        if kind == "harvest":
            params = {"harvested_g": float(value), "trigger": "growth_rate" if by_state else "schedule"}
            if by_state:
                params["fraction"] = float(control[integ.HARVEST_FRACTION])
            else:  # the scheduled event applied at this time (the integrator stops on its time)
                params["fraction"] = scheduled_harvests[min(scheduled_harvests, key=lambda time: abs(time - t))]
        elif kind in ("degas_on", "degas_off"):
            params = {"trigger": "do_alarm" if by_state else "schedule"}
        elif kind == "dose_nitrate":
            params = {"nitrate_mg_per_l": float(value)}
        else:
            params = {"value": float(value * 100.0 if kind == "set_led" else value)}
        rows.append((unit, float(t), kind, json.dumps({k: v for k, v in params.items() if v is not None})))
    return rows


def simulate(
    scenario: Scenario,
    out_dir: str | Path,
    *,
    chunk_units: int = 250,
    telemetry: bool = True,
    truth_dtype: type = np.float32,
    rtol: float = 3e-5,
    progress: Callable[[int], None] | None = None,
) -> SimulationSummary:
    """Run ``scenario`` and write ``telemetry.parquet``, ``events.parquet``, ``truth.parquet`` in ``out_dir``.

    ``progress`` is called with the number of units just finished.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    batch = build_batch(scenario)
    strain = scenario.resolved_strain()
    hours = batch.hours
    grid = np.arange(0.0, hours + 1e-9, scenario.truth_every_min / 60.0)
    truth_schema = pa.schema(
        [("unit_id", pa.string()), ("time", TIMESTAMP)]
        + [(name, pa.float64() if name == "co2_captured_g" else pa.from_numpy_dtype(truth_dtype))
           for name in (*TRUTH_LEADING, *r.STATE_NAMES, *TRUTH_EXTRA)]
    )  # fmt: skip
    n = len(batch)
    harvests = np.zeros(n, dtype=int)
    final_biomass = np.zeros(n)
    captured = np.zeros(n)
    steps = np.zeros(n, dtype=np.int64)
    telemetry_rows = 0
    sensors = [s for s in scenario.sensors.include if s in SENSORS]
    scheduled = {float(e.time_h): float(e.value) for e in scenario.events if e.kind == "harvest"}
    with pq.ParquetWriter(out / "truth.parquet", truth_schema) as truth_writer, \
         pq.ParquetWriter(out / "events.parquet", EVENTS_SCHEMA) as events_writer, \
         pq.ParquetWriter(out / "telemetry.parquet", TELEMETRY_SCHEMA) as telemetry_writer:  # fmt: skip
        for start in range(0, n, chunk_units):
            stop = min(n, start + chunk_units)
            chunk = batch.rows(start, stop)
            result = integrate(chunk, grid, rtol=rtol)
            observables, ambient = observables_for(chunk, result)
            steps[start:stop] = result.accepted_steps
            columns = {name: observables[:, :, OBSERVABLE_NAMES.index(name)] for name in OBSERVABLE_NAMES}
            columns |= {name: result.states[:, :, k] for k, name in enumerate(r.STATE_NAMES)}
            ids = np.repeat(np.array([unit_id(i) for i in range(start, stop)]), grid.size)
            table = {"unit_id": pa.array(ids), "time": _stamps(scenario.start, np.tile(grid, stop - start))}
            for name in truth_schema.names[2:]:
                dtype = np.float64 if name == "co2_captured_g" else truth_dtype
                table[name] = pa.array(np.asarray(columns[name], dtype=dtype).reshape(-1))
            truth_writer.write_table(pa.table(table, schema=truth_schema))
            del table, ids
            event_rows = []
            for k, log in enumerate(result.logs):
                unit = start + k
                event_rows += _event_rows(unit, log, chunk.controls[k], scheduled)
                harvests[unit] = int(np.sum(log[:, 1] == integ.HARVEST)) if len(log) else 0
                final_biomass[unit] = columns["biomass_g_per_l"][k, -1]
                captured[unit] = columns["co2_captured_g"][k, -1]
                if telemetry:
                    rng = np.random.default_rng([scenario.seed, unit])
                    truth = UnitTruth(grid, result.states[k], observables[k], result.dynamic[k], ambient[k],
                                      chunk.params[k])  # fmt: skip
                    unit_rows, lab_rows = _unit_telemetry(unit, truth, strain, scenario, sensors, rng)
                    telemetry_writer.write_table(unit_rows)
                    telemetry_rows += unit_rows.num_rows
                    event_rows += lab_rows
            event_rows += _fault_rows(scenario, range(start, stop))
            if event_rows:
                event_rows.sort(key=lambda row: (row[0], row[1]))
                events_writer.write_table(pa.table({
                    "unit_id": pa.array([unit_id(u) for u, *_ in event_rows]),
                    "time": _stamps(scenario.start, np.array([t for _, t, _, _ in event_rows])),
                    "kind": pa.array([k for _, _, k, _ in event_rows]),
                    "params": pa.array([p for *_, p in event_rows]),
                }, schema=EVENTS_SCHEMA))  # fmt: skip
            del result, observables, columns
            if progress is not None:
                progress(stop - start)
    return SimulationSummary(out, n, harvests, final_biomass, captured, telemetry_rows, steps)


def _unit_telemetry(unit, truth, strain, scenario, sensors, rng) -> tuple[pa.Table, list]:
    times_parts, sensor_parts, value_parts, lab_rows = [], [], [], []
    for name in sensors:
        times, readings = read_sensor(name, truth, strain, scenario, unit, rng)
        times_parts.append(times)
        value_parts.append(readings)
        sensor_parts.append(np.full(times.size, SENSORS_INDEX[name], dtype=np.int32))
        if name == "dry_weight":
            delay = scenario.sensors.dry_weight_entry_delay_h
            lab_rows += [(unit, float(t + delay), "lab_entry",
                          json.dumps({"sensor": "dry_weight", "sample_time_h": float(t), "value": float(v)}))
                         for t, v in zip(times, readings, strict=True)]  # fmt: skip
    times = np.concatenate(times_parts)
    order = np.argsort(times, kind="stable")
    names = pa.DictionaryArray.from_arrays(pa.array(np.concatenate(sensor_parts)[order]), SENSOR_DICTIONARY)
    table = pa.table({
        "unit_id": pa.array(np.full(times.size, unit_id(unit))),
        "time": _stamps(scenario.start, times[order]),
        "sensor": names.cast(pa.string()),
        "value": pa.array(np.concatenate(value_parts)[order]),
    }, schema=TELEMETRY_SCHEMA)  # fmt: skip
    return table, lab_rows


def _fault_rows(scenario: Scenario, units: range) -> list:
    rows = []
    for fault in scenario.faults:
        affected = [u for u in units if fault.units is None or u in fault.units]
        info = {"sensor": fault.sensor, "fault": fault.kind, "magnitude": fault.magnitude}
        for u in affected:
            rows.append((u, fault.start_h, "fault_start", json.dumps(info)))
            if np.isfinite(fault.end_h) and fault.end_h <= scenario.days * 24.0:
                rows.append((u, fault.end_h, "fault_end", json.dumps(info)))
    return rows


SENSORS_INDEX = {name: k for k, name in enumerate(SENSORS)}
SENSOR_DICTIONARY = pa.array(list(SENSORS))
