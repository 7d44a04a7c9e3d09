"""Run a batch through the compiled integrator: true state on an output grid, events, status."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from algaflow.model.reactor import N_STATE
from algaflow.sim import integrator as integ
from algaflow.sim.build import ABSOLUTE_TOLERANCE, Batch


@dataclass(slots=True)
class BatchResult:
    """True states (units, times, N_STATE), event-changed parameters, event log and integration counts."""

    times_h: np.ndarray
    states: np.ndarray
    dynamic: np.ndarray
    logs: list[np.ndarray]
    accepted_steps: np.ndarray
    rejected_steps: np.ndarray


class IntegrationError(RuntimeError):
    """The integrator could not finish a unit (the message names the unit and why)."""


def integrate(
    batch: Batch, times_h: np.ndarray, rtol: float = 1e-6, max_steps: int = 2_000_000, max_log: int = 4096,
    dtype: type = np.float64,
) -> BatchResult:
    """Integrate every unit of ``batch`` from 0 to ``batch.hours``; states at ``times_h``."""
    n = len(batch)
    times_h = np.ascontiguousarray(times_h, dtype=float)
    out = np.empty((n, times_h.size, N_STATE))
    dynamic = np.empty((n, times_h.size, integ.DYNAMIC_PARAMETERS.size))
    logs = np.zeros((n, max_log, integ.LOG_FIELDS))
    status = np.zeros((n, 4), dtype=np.int64)
    params = batch.params.copy()  # events change parameters; keep the batch reusable
    integ.integrate_batch(
        batch.y0, params, batch.controls, batch.event_times, batch.event_kinds, batch.event_values,
        batch.event_counts, *batch.tables, 0.0, batch.hours, times_h, out, dynamic, logs,
        rtol, ABSOLUTE_TOLERANCE, max_steps, status,
    )  # fmt: skip
    failed = np.flatnonzero(status[:, 0] != integ.OK)
    if failed.size:
        unit = int(failed[0])
        raise IntegrationError(f"unit {unit}: {integ.STATUS_TEXT[status[unit, 0]]} ({failed.size} units failed)")
    return BatchResult(
        times_h, out.astype(dtype, copy=False), dynamic.astype(dtype, copy=False),
        [logs[i, : status[i, 3]].copy() for i in range(n)], status[:, 1].copy(), status[:, 2].copy(),
    )  # fmt: skip
