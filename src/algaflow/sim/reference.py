"""The same model and events integrated with SciPy's ``solve_ivp``, one unit at a time.

An independent path to check the compiled integrator against (tight DOP853) and to time it against
(RK45): segments end at time events and forcing jumps; state events are SciPy terminal events
(direction +1) on the same event functions, after which the action is applied and the solver restarted.
"""

from __future__ import annotations

import numpy as np
from scipy.integrate import solve_ivp

from algaflow.model.reactor import N_MEMO, N_STATE, V_LIT, V_TANK, X_LIT, X_TANK
from algaflow.sim import integrator as integ
from algaflow.sim.build import ABSOLUTE_TOLERANCE, Batch
from algaflow.sim.tables import next_jump


def solve_unit_with_scipy(
    batch: Batch, unit: int, method: str = "DOP853", rtol: float = 1e-10, atol_scale: float = 1e-4,
    times_h: np.ndarray | None = None,
) -> tuple[np.ndarray, list[tuple[float, int, float]], int, np.ndarray | None]:
    """Final state, event log [(time, kind, value)], RHS evaluations, and states at ``times_h`` if given."""
    times, values, counts, jumps, jump_counts = batch.tables
    p = batch.params[unit].copy()
    control = batch.controls[unit]
    atol = ABSOLUTE_TOLERANCE[:N_STATE] * atol_scale
    light, ambient = int(control[integ.LIGHT_TABLE]), int(control[integ.AMBIENT_TABLE])
    y = batch.y0[unit].copy()
    t = 0.0
    log: list[tuple[float, int, float]] = []
    n_events = int(batch.event_counts[unit])
    k = 0
    evaluations = 0
    dense_out = None if times_h is None else np.full((len(times_h), N_STATE), np.nan)
    z = np.empty(N_STATE + 1)
    dz = np.empty(N_STATE + 1)
    g = np.empty(integ.N_EVENT_FUNCTIONS)
    no_memo = np.zeros(N_MEMO)

    def derivative(time: float, state: np.ndarray, seg_end: float) -> np.ndarray:
        z[:N_STATE] = state
        z[N_STATE] = time
        integ._derivative(z, p, control, seg_end, times, values, counts, dz)
        return dz[:N_STATE].copy()

    def event_function(index: int):
        def g_of(time: float, state: np.ndarray) -> float:
            z[:N_STATE] = state
            integ._event_values(z, p, control, g, no_memo, 0)
            return g[index]

        g_of.terminal = True
        g_of.direction = 1
        return g_of

    events = [event_function(e) for e in range(integ.N_EVENT_FUNCTIONS)]
    while t < batch.hours:
        while k < n_events and batch.event_times[unit, k] <= t:
            kind, value = int(batch.event_kinds[unit, k]), float(batch.event_values[unit, k])
            z[:N_STATE] = y
            logged = integ._apply_event(kind, value, z, p, control)
            y = z[:N_STATE].copy()
            log.append((t, kind, logged))
            k += 1
        seg_end = batch.hours
        if k < n_events:
            seg_end = min(seg_end, batch.event_times[unit, k])
        seg_end = min(seg_end, next_jump(jumps[light], jump_counts[light], t),
                      next_jump(jumps[ambient], jump_counts[ambient], t))  # fmt: skip
        while t < seg_end:
            # Events whose g starts at or above zero (just fired) are not armed until g goes negative.
            z[:N_STATE] = y
            integ._event_values(z, p, control, g, no_memo, 0)
            armed = [events[e] for e in range(len(events)) if g[e] < 0.0]
            solution = solve_ivp(lambda time, state, end=seg_end: derivative(time, state, end), (t, seg_end), y,
                                 method=method, rtol=rtol, atol=atol, events=armed or None,
                                 dense_output=dense_out is not None)  # fmt: skip
            evaluations += solution.nfev
            if not solution.success:
                raise RuntimeError(f"solve_ivp failed at t = {t:.4f} h: {solution.message}")
            if dense_out is not None:
                inside = (times_h >= t) & (times_h <= solution.t[-1])
                if inside.any():
                    dense_out[inside] = solution.sol(times_h[inside]).T
            y = solution.y[:, -1].copy()
            t = float(solution.t[-1])
            if solution.status == 1:  # a terminal event
                fired = [armed_g for armed_g, te in zip(armed, solution.t_events, strict=True) if len(te)]
                index = events.index(fired[0])
                z[:N_STATE] = y
                if index == 0:
                    mean = (y[X_TANK] * p[V_TANK] + y[X_LIT] * p[V_LIT]) / (p[V_TANK] + p[V_LIT])
                    if mean >= control[integ.HARVEST_MIN_BIOMASS]:
                        removed = integ._apply_event(integ.HARVEST, control[integ.HARVEST_FRACTION], z, p, control)
                        log.append((t, integ.HARVEST, removed))
                else:
                    kind = integ.DEGAS_OFF if p[integ.DEGASSING] > 0.5 else integ.DEGAS_ON
                    integ._apply_event(kind, 0.0, z, p, control)
                    log.append((t, kind, p[integ.AIR_FLOW]))
                y = z[:N_STATE].copy()
    return y, log, evaluations, dense_out
