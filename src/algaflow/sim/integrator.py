"""Batch integrator with discrete events: RODAS4 (Hairer & Wanner 1996), compiled, one reactor per thread.

The reactor loop is stiff (tank↔tube exchange and kLa act in minutes, growth in days), so an explicit
method is held to minute steps by stability alone. RODAS4 is an L-stable, stiffly accurate Rosenbrock
method of order 4 with an embedded order-3 error estimate. With time appended as a state (dt/dt = 1) the
system is autonomous and each step solves, for stages i = 1…6,

    (I/(γh) − J) U_i = f(z + Σ_{j<i} a_ij U_j) + Σ_{j<i} (c_ij / h) U_j,     z_new = z + Σ m_i U_i,

with J the Jacobian at z, the error estimate U_6, and step control h_new = h · clip(0.9 · err^(−1/4), 0.2, 6)
on the RMS of U_6 / (atol + rtol |z|), tempered by the predictive controller of Gustafsson (1994).

Cost per step is almost all evaluations of f, and most of an evaluation is the tube light average and the
pH solve. So J comes from grouped forward differences that reuse both where a column leaves them
unchanged (:func:`algaflow.model.reactor.reactor_jacobian`), is kept when a step is rejected, and the pH
solve of every evaluation starts from the [H⁺] of f(z).

Events:
* time events (dosing, setpoints, scheduled harvests) and forcing jumps (lamp on/off) end a segment:
  the integrator stops exactly there and restarts cleanly (fresh f and J, a 36-s first step);
* state events g(z) crossing zero upwards (growth rate falling below the harvest threshold, DO rising
  above the alarm) are located inside the step on the cubic Hermite interpolant of the step, refined on
  steps redone from z to the candidate time (regula falsi, to 3.6 ms), the action applied at the first
  verified crossing, and the integration restarted.
Outputs on a fixed grid are filled by the same Hermite interpolant (4th-order values, 3rd-order between).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from algaflow.model.gas import AIR_O2_FRACTION, oxygen_saturation_mg_per_l
from algaflow.model.reactor import (
    AIR_FLOW,
    ALK_TANK,
    CO2_GAS_PPM,
    DEGASSING,
    DIC_TANK,
    LED,
    N_MEMO,
    N_STATE,
    NO3_TANK,
    O2_LIT,
    O2_TANK,
    REUSE_CHEMISTRY,
    REUSE_LIGHT,
    SALINITY,
    T_SETPOINT,
    TEMP,
    V_LIT,
    V_TANK,
    X_LIT,
    X_TANK,
    difference_step,
    reactor_growth_rate,
    reactor_jacobian,
    reactor_rhs,
)
from algaflow.sim.tables import next_jump, table_value

# ---- RODAS4 tableau (Hairer & Wanner, rodas.f) ------------------------------------------------------
GAMMA = 0.25
_A = np.zeros((6, 6))
_A[1, 0] = 1.544
_A[2, :2] = (0.9466785280815826, 0.2557011698983284)
_A[3, :3] = (3.314825187068521, 2.896124015972201, 0.9986419139977817)
_A[4, :4] = (1.221224509226641, 6.019134481288629, 12.53708332932087, -0.6878860361058950)
_A[5, :5] = (1.221224509226641, 6.019134481288629, 12.53708332932087, -0.6878860361058950, 1.0)
_C = np.zeros((6, 6))
_C[1, 0] = -5.6688
_C[2, :2] = (-2.430093356833875, -0.2063599157091915)
_C[3, :3] = (-0.1073529058151375, -9.594562251023355, -20.47028614809616)
_C[4, :4] = (7.496443313967647, -10.24680431464352, -33.99990352819905, 11.70890893206160)
_C[5, :5] = (8.083246795921522, -7.981132988064893, -31.52159432874371, 16.31930543123136, -6.058818238834054)
_M = np.array([1.221224509226641, 6.019134481288629, 12.53708332932087, -0.6878860361058950, 1.0, 1.0])

N_AUGMENTED = N_STATE + 1  # state + time
TIME = N_STATE

# ---- per-reactor control row (operating rules) ------------------------------------------------------
CONTROL_NAMES = (
    "harvest_enabled", "harvest_growth_threshold_per_h", "harvest_fraction", "harvest_min_biomass_g_per_l",
    "harvest_reference_par", "do_alarm_enabled", "do_high_mg_per_l", "do_low_mg_per_l",
    "fresh_nitrate_mg_per_l", "fresh_dic_mmol_per_l", "fresh_alkalinity_mmol_per_l",
    "light_table", "ambient_table",
)  # fmt: skip
(
    HARVEST_ENABLED, HARVEST_THRESHOLD, HARVEST_FRACTION, HARVEST_MIN_BIOMASS, HARVEST_REF_PAR,
    ALARM_ENABLED, DO_HIGH, DO_LOW, FRESH_NITRATE, FRESH_DIC, FRESH_ALK, LIGHT_TABLE, AMBIENT_TABLE,
) = range(13)
N_CONTROL = 13

# ---- event kinds (time events and the log) ----------------------------------------------------------
EVENT_KINDS = ("harvest", "degas_on", "degas_off", "dose_nitrate", "set_led", "set_air_flow",
               "set_temperature", "set_co2")  # fmt: skip
HARVEST, DEGAS_ON, DEGAS_OFF, DOSE_NITRATE, SET_LED, SET_AIR_FLOW, SET_TEMPERATURE, SET_CO2 = range(1, 9)
N_EVENT_FUNCTIONS = 2  # harvest rule, DO alarm
LOG_FIELDS = 4  # time, kind, value, triggered_by_state (0/1)

# ---- parameters that events change, recorded beside the state at every output time ----------------
DYNAMIC_PARAMETERS = np.array([LED, AIR_FLOW, DEGASSING, T_SETPOINT, CO2_GAS_PPM])

EVENT_TIME_TOLERANCE_H = 1e-6  # state events are located to 3.6 ms
EVENT_REFINEMENTS = 12
RESTART_STEP_H = 0.01  # first step after a discontinuity, h (36 s; the fastest transients take minutes)

# ---- integration status -------------------------------------------------------------------------------
OK, STEP_TOO_SMALL, TOO_MANY_STEPS, LOG_FULL = 0, 1, 2, 3
STATUS_TEXT = ("ok", "step size underflow", "too many steps", "event log full")


@njit(cache=True, error_model="numpy")
def _forcing(t, seg_end, p, control, times, values, counts):
    """Incident PAR (µmol m⁻² s⁻¹) and ambient temperature (°C) at t; left limits at the segment end."""
    left = t >= seg_end
    light = int(control[LIGHT_TABLE])
    ambient = int(control[AMBIENT_TABLE])
    par = p[LED] * table_value(times[light], values[light], counts[light], t, left)
    return max(par, 0.0), table_value(times[ambient], values[ambient], counts[ambient], t, left)


@njit(cache=True, error_model="numpy")
def _derivative_memo(z, p, control, seg_end, times, values, counts, out, memo):
    """f(z) of the augmented system; ``memo`` seeds the pH solve and receives this evaluation's values.

    Returns the incident PAR at z.
    """
    par, ambient = _forcing(z[TIME], seg_end, p, control, times, values, counts)
    reactor_rhs(z[:N_STATE], p, par, ambient, out[:N_STATE], memo, 0)
    out[TIME] = 1.0
    return par


@njit(cache=True, error_model="numpy")
def _derivative(z, p, control, seg_end, times, values, counts, out):
    """f(z) of the augmented system, from scratch."""
    _derivative_memo(z, p, control, seg_end, times, values, counts, out, np.zeros(N_MEMO))


@njit(cache=True, error_model="numpy")
def _jacobian(z, f0, memo, p, control, seg_end, times, values, counts, atol, jac):
    """∂f/∂z of the augmented system: the state block from the model, the time column by one difference.

    The time column is zero where the forcing is locally constant (lamps between switches); otherwise f is
    evaluated at the forcing of t + δ (backwards at the segment end), reusing [H⁺], and the light
    average too when PAR did not change. The time row is zero (dt/dt = 1).
    """
    par, ambient = _forcing(z[TIME], seg_end, p, control, times, values, counts)
    reactor_jacobian(z[:N_STATE], p, par, ambient, f0[:N_STATE], memo, atol[:N_STATE], jac[:N_STATE, :N_STATE])
    for i in range(N_AUGMENTED):
        jac[i, TIME] = 0.0
        jac[TIME, i] = 0.0
    delta = difference_step(z[TIME], atol[TIME])
    if z[TIME] + delta >= seg_end:
        delta = -delta
    par_later, ambient_later = _forcing(z[TIME] + delta, seg_end, p, control, times, values, counts)
    if par_later == par and ambient_later == ambient:
        return
    f = np.empty(N_STATE)
    memo_probe = memo.copy()
    reuse = REUSE_CHEMISTRY | (REUSE_LIGHT if par_later == par else 0)
    reactor_rhs(z[:N_STATE], p, par_later, ambient_later, f, memo_probe, reuse)
    for i in range(N_STATE):
        jac[i, TIME] = (f[i] - f0[i]) / delta


@njit(cache=True, error_model="numpy")
def _event_reuse(p, control, par_now):
    """What the harvest rule's growth rate may reuse from the memo of f at the same state."""
    return REUSE_CHEMISTRY | (REUSE_LIGHT if control[HARVEST_REF_PAR] * p[LED] == par_now else 0)


@njit(cache=True, error_model="numpy")
def _event_values(z, p, control, out, memo, reuse):
    """g(z) for the state events; an event fires when g crosses zero upwards.

    The harvest rule compares the growth rate at the reference PAR (not the current one, so that night
    does not trigger it) with its threshold. ``memo``/``reuse`` as in :func:`reactor_rhs` (not modified).
    """
    out[0] = -1.0
    if control[HARVEST_ENABLED] > 0.5:
        reference = control[HARVEST_REF_PAR] * p[LED]
        out[0] = control[HARVEST_THRESHOLD] - reactor_growth_rate(z[:N_STATE], p, reference, memo.copy(), reuse)
    out[1] = -1.0
    if control[ALARM_ENABLED] > 0.5:
        if p[DEGASSING] > 0.5:
            out[1] = control[DO_LOW] - z[O2_LIT]
        else:
            out[1] = z[O2_LIT] - control[DO_HIGH]


@njit(cache=True, error_model="numpy")
def _lu_factor(a, pivots):
    n = a.shape[0]
    for k in range(n):
        best = k
        for i in range(k + 1, n):
            if abs(a[i, k]) > abs(a[best, k]):
                best = i
        pivots[k] = best
        if best != k:
            for j in range(n):
                a[k, j], a[best, j] = a[best, j], a[k, j]
        pivot = a[k, k]
        if pivot == 0.0:
            continue
        for i in range(k + 1, n):
            a[i, k] /= pivot
            factor = a[i, k]
            if factor != 0.0:
                for j in range(k + 1, n):
                    a[i, j] -= factor * a[k, j]


@njit(cache=True, error_model="numpy")
def _lu_solve(lu, pivots, b):
    n = lu.shape[0]
    for k in range(n):
        j = pivots[k]
        if j != k:
            b[k], b[j] = b[j], b[k]
    for i in range(n):
        for j in range(i):
            b[i] -= lu[i, j] * b[j]
    for i in range(n - 1, -1, -1):
        for j in range(i + 1, n):
            b[i] -= lu[i, j] * b[j]
        b[i] /= lu[i, i]


@njit(cache=True, error_model="numpy")
def _rodas_step(z, f0, memo, h, jac, p, control, seg_end, times, values, counts, atol, rtol, work, pivots,
                stages, z_stage, f_stage, memo_stage, z_new):
    """One RODAS4 step of size h from (z, f0 = f(z), J = jac); returns the error norm (≤ 1 to accept)."""
    n = z.shape[0]
    inv = 1.0 / (GAMMA * h)
    for i in range(n):
        for j in range(n):
            work[i, j] = -jac[i, j]
        work[i, i] += inv
    _lu_factor(work, pivots)
    for s in range(6):
        if s == 0:
            for i in range(n):
                f_stage[i] = f0[i]
        else:
            for i in range(n):
                acc = z[i]
                for j in range(s):
                    acc += _A[s, j] * stages[j, i]
                z_stage[i] = acc
            if z_stage[TIME] > seg_end:
                z_stage[TIME] = seg_end
            memo_stage[:] = memo
            _derivative_memo(z_stage, p, control, seg_end, times, values, counts, f_stage, memo_stage)
        for i in range(n):
            acc = f_stage[i]
            for j in range(s):
                acc += _C[s, j] / h * stages[j, i]
            stages[s, i] = acc
        _lu_solve(work, pivots, stages[s])
    error = 0.0
    for i in range(n):
        acc = z[i]
        for j in range(6):
            acc += _M[j] * stages[j, i]
        z_new[i] = acc
        scale = atol[i] + rtol * max(abs(z[i]), abs(acc))
        error += (stages[5, i] / scale) ** 2
    z_new[TIME] = z[TIME] + h
    return math.sqrt(error / n)


@njit(cache=True, error_model="numpy")
def _hermite(z0, f0, z1, f1, h, theta, out):
    """Cubic Hermite interpolant of the step at fraction theta ∈ [0, 1]."""
    t2 = theta * theta
    t3 = t2 * theta
    h00 = 2 * t3 - 3 * t2 + 1
    h10 = t3 - 2 * t2 + theta
    h01 = -2 * t3 + 3 * t2
    h11 = t3 - t2
    for i in range(z0.shape[0]):
        out[i] = h00 * z0[i] + h10 * h * f0[i] + h01 * z1[i] + h11 * h * f1[i]


@njit(cache=True, error_model="numpy")
def _apply_event(kind, value, z, p, control):
    """Apply one event to state z and parameters p in place; returns the value worth logging."""
    if kind == HARVEST:
        fraction = value
        removed = fraction * (z[X_TANK] * p[V_TANK] + z[X_LIT] * p[V_LIT])
        o2_fresh = oxygen_saturation_mg_per_l(z[TEMP], p[SALINITY], AIR_O2_FRACTION)
        for j in range(2):
            z[X_TANK + j] *= 1.0 - fraction
            z[NO3_TANK + j] = (1.0 - fraction) * z[NO3_TANK + j] + fraction * control[FRESH_NITRATE]
            z[DIC_TANK + j] = (1.0 - fraction) * z[DIC_TANK + j] + fraction * control[FRESH_DIC]
            z[ALK_TANK + j] = (1.0 - fraction) * z[ALK_TANK + j] + fraction * control[FRESH_ALK]
            z[O2_TANK + j] = (1.0 - fraction) * z[O2_TANK + j] + fraction * o2_fresh
        return removed
    if kind == DEGAS_ON:
        p[DEGASSING] = 1.0
    elif kind == DEGAS_OFF:
        p[DEGASSING] = 0.0
    elif kind == DOSE_NITRATE:
        z[NO3_TANK] += value * (p[V_TANK] + p[V_LIT]) / p[V_TANK]  # dose lands in the tank
    elif kind == SET_LED:
        p[LED] = value
    elif kind == SET_AIR_FLOW:
        p[AIR_FLOW] = value
    elif kind == SET_TEMPERATURE:
        p[T_SETPOINT] = value
    elif kind == SET_CO2:
        p[CO2_GAS_PPM] = value
    return value


@njit(cache=True, error_model="numpy")
def _illinois(theta, g, lo, hi, g_lo, g_hi, side):
    """One Illinois regula-falsi bracket update with g(θ); the bracket keeps g(lo) < 0 ≤ g(hi).

    Halving the stale end's g when the same end moves twice keeps the convergence superlinear.
    """
    if g >= 0.0:
        if side == 1:
            g_lo *= 0.5
        return lo, theta, g_lo, g, 1
    if side == -1:
        g_hi *= 0.5
    return theta, hi, g, g_hi, -1


@njit(cache=True, error_model="numpy")
def _log(log, count, t, kind, value, by_state):
    if count >= log.shape[0]:
        return count
    log[count, 0] = t
    log[count, 1] = kind
    log[count, 2] = value
    log[count, 3] = by_state
    return count + 1


@njit(cache=True, error_model="numpy")
def integrate_reactor(y0, p, control, event_times, event_kinds, event_values, n_events,
                      times, values, counts, jumps, jump_counts, t_start, t_end, t_out, out, out_dynamic,
                      log, rtol, atol, max_steps):
    """Integrate one reactor from t_start to t_end (hours); fills ``out`` on ``t_out`` and ``log``.

    Returns (status, accepted steps, rejected steps, log entries).
    """
    n = N_AUGMENTED
    z = np.empty(n)
    z[:N_STATE] = y0
    z[TIME] = t_start
    f0 = np.empty(n)
    f1 = np.empty(n)
    z1 = np.empty(n)
    z_event = np.empty(n)
    g0 = np.empty(N_EVENT_FUNCTIONS)
    g1 = np.empty(N_EVENT_FUNCTIONS)
    g_probe = np.empty(N_EVENT_FUNCTIONS)
    jac = np.empty((n, n))
    work = np.empty((n, n))
    memo = np.zeros(N_MEMO)  # light average and [H⁺] of the evaluation f0 = f(z)
    memo1 = np.zeros(N_MEMO)  # ... of f1 = f(z1)
    memo_stage = np.empty(N_MEMO)
    jacobian_at_z = False
    pivots = np.empty(n, dtype=np.int64)
    stages = np.empty((6, n))
    z_stage = np.empty(n)
    f_stage = np.empty(n)
    probe = np.empty(n)
    light = int(control[LIGHT_TABLE])
    ambient = int(control[AMBIENT_TABLE])
    n_log = 0
    accepted = 0
    rejected = 0
    k_out = 0
    while k_out < t_out.shape[0] and t_out[k_out] < t_start:
        k_out += 1
    while k_out < t_out.shape[0] and t_out[k_out] == t_start:
        out[k_out, :] = z[:N_STATE]
        out_dynamic[k_out, :] = p[DYNAMIC_PARAMETERS]
        k_out += 1
    t = t_start
    h = RESTART_STEP_H
    h_min = 1e-10
    event_index = 0
    while t < t_end:
        while event_index < n_events and event_times[event_index] <= t:
            logged = _apply_event(event_kinds[event_index], event_values[event_index], z, p, control)
            n_log = _log(log, n_log, t, event_kinds[event_index], logged, 0.0)
            event_index += 1
        seg_end = t_end
        if event_index < n_events:
            seg_end = min(seg_end, event_times[event_index])
        seg_end = min(seg_end, next_jump(jumps[light], jump_counts[light], t))
        seg_end = min(seg_end, next_jump(jumps[ambient], jump_counts[ambient], t))
        par0 = _derivative_memo(z, p, control, seg_end, times, values, counts, f0, memo)
        jacobian_at_z = False
        _event_values(z, p, control, g0, memo, _event_reuse(p, control, par0))
        # Each segment (after a time event or a forcing jump: lamps switching start fast O2/CO2 transients)
        # starts afresh: small first step, no step-size history.
        h = min(h, RESTART_STEP_H)
        h_previous = 0.0
        error_previous = 1.0
        just_rejected = False
        while t < seg_end:
            if accepted + rejected >= max_steps:
                return TOO_MANY_STEPS, accepted, rejected, n_log
            remaining = seg_end - t
            if h >= remaining or 1.05 * h >= remaining:
                h = remaining
            if not jacobian_at_z:  # a rejected step retries with the same J
                _jacobian(z, f0, memo, p, control, seg_end, times, values, counts, atol, jac)
                jacobian_at_z = True
            error = _rodas_step(z, f0, memo, h, jac, p, control, seg_end, times, values, counts, atol, rtol,
                                work, pivots, stages, z_stage, f_stage, memo_stage, z1)
            if not (error <= 1.0):  # also rejects NaN
                rejected += 1
                just_rejected = True
                h *= max(0.2, 0.9 * error ** -0.25) if error == error else 0.2
                if h < h_min:
                    return STEP_TOO_SMALL, accepted, rejected, n_log
                continue
            accepted += 1
            t1 = t + h
            if seg_end - t1 < 1e-12 * max(1.0, abs(seg_end)):
                t1 = seg_end
                z1[TIME] = seg_end
            memo1[:] = memo
            par1 = _derivative_memo(z1, p, control, seg_end, times, values, counts, f1, memo1)
            _event_values(z1, p, control, g1, memo1, _event_reuse(p, control, par1))
            crossed = False
            for e in range(N_EVENT_FUNCTIONS):
                crossed = crossed or (g0[e] < 0.0 and g1[e] >= 0.0)
            fired = -1
            theta_event = 1.0
            if crossed:
                # Locate the earliest crossing on the Hermite interpolant (Illinois regula falsi per event).
                for e in range(N_EVENT_FUNCTIONS):
                    if not (g0[e] < 0.0 and g1[e] >= 0.0):
                        continue
                    lo, hi, g_lo, g_hi = 0.0, 1.0, g0[e], g1[e]
                    side = 0
                    for _ in range(60):
                        mid = (lo * g_hi - hi * g_lo) / (g_hi - g_lo)
                        _hermite(z, f0, z1, f1, h, mid, probe)
                        _event_values(probe, p, control, g_probe, memo, 0)
                        lo, hi, g_lo, g_hi, side = _illinois(mid, g_probe[e], lo, hi, g_lo, g_hi, side)
                        if (hi - lo) * h < 1e-9:
                            break
                    if fired < 0 or hi < theta_event:
                        theta_event = hi
                        fired = e
            h_used = t1 - t
            if fired >= 0 and theta_event < 1.0:
                # The crossing on the interpolant is a first guess. Refine it on true solution points (the
                # step redone from z to θh) by Illinois regula falsi, and take the state at the first θ
                # where g ≥ 0 was verified: an event's time then carries the integrator's accuracy.
                lo, hi, g_lo, g_hi = 0.0, 1.0, g0[fired], g1[fired]
                theta = theta_event
                side = 0
                for _ in range(EVENT_REFINEMENTS):
                    _rodas_step(z, f0, memo, theta * h, jac, p, control, seg_end, times, values, counts, atol,
                                rtol, work, pivots, stages, z_stage, f_stage, memo_stage, z_event)
                    _event_values(z_event, p, control, g_probe, memo, 0)
                    if g_probe[fired] >= 0.0:
                        for i in range(n):
                            z1[i] = z_event[i]
                        h_used = theta * h
                    lo, hi, g_lo, g_hi, side = _illinois(theta, g_probe[fired], lo, hi, g_lo, g_hi, side)
                    if (hi - lo) * h < EVENT_TIME_TOLERANCE_H:
                        break
                    theta = (lo * g_hi - hi * g_lo) / (g_hi - g_lo)
                if hi < 1.0:
                    memo1[:] = memo
                    _derivative_memo(z1, p, control, seg_end, times, values, counts, f1, memo1)
            # Fill outputs inside (t, t + h_used].
            t_new = z1[TIME]
            while k_out < t_out.shape[0] and t_out[k_out] <= t_new:
                theta = (t_out[k_out] - t) / h_used if h_used > 0 else 1.0
                _hermite(z, f0, z1, f1, h_used, theta, probe)
                out[k_out, :] = probe[:N_STATE]
                out_dynamic[k_out, :] = p[DYNAMIC_PARAMETERS]
                k_out += 1
            for i in range(n):
                z[i] = z1[i]
                f0[i] = f1[i]
            memo[:] = memo1
            jacobian_at_z = False
            t = t_new
            # Step size: h err^(−1/4), and the predictive (Gustafsson 1994) estimate that also uses the previous
            # step's error ratio, whichever is smaller; no growth right after a rejection (Hairer & Wanner IV.8).
            error = max(error, 1e-10)
            factor = 0.9 * error**-0.25
            if h_previous > 0.0:
                factor = min(factor, factor * (h / h_previous) * (error_previous / error) ** 0.25)
            factor = min(6.0, max(0.2, factor))
            if just_rejected:
                factor = min(factor, 1.0)
            h_previous = h
            error_previous = max(error, 1e-2)
            just_rejected = False
            h_next = h * factor
            if fired >= 0:
                if fired == 0:
                    if (z[X_TANK] * p[V_TANK] + z[X_LIT] * p[V_LIT]) / (p[V_TANK] + p[V_LIT]) >= control[
                        HARVEST_MIN_BIOMASS
                    ]:
                        removed = _apply_event(HARVEST, control[HARVEST_FRACTION], z, p, control)
                        n_log = _log(log, n_log, t, HARVEST, removed, 1.0)
                else:
                    kind = DEGAS_OFF if p[DEGASSING] > 0.5 else DEGAS_ON
                    _apply_event(kind, 0.0, z, p, control)
                    n_log = _log(log, n_log, t, kind, p[AIR_FLOW], 1.0)
                par0 = _derivative_memo(z, p, control, seg_end, times, values, counts, f0, memo)
                h_next = min(h_next, RESTART_STEP_H)
                _event_values(z, p, control, g0, memo, _event_reuse(p, control, par0))
            else:
                for e in range(N_EVENT_FUNCTIONS):
                    g0[e] = g1[e]
            h = h_next
        if n_log >= log.shape[0]:
            return LOG_FULL, accepted, rejected, n_log
    while k_out < t_out.shape[0]:
        out[k_out, :] = z[:N_STATE]
        out_dynamic[k_out, :] = p[DYNAMIC_PARAMETERS]
        k_out += 1
    return OK, accepted, rejected, n_log


@njit(cache=True, error_model="numpy", parallel=True)
def integrate_batch(y0, params, controls, event_times, event_kinds, event_values, event_counts,
                    times, values, counts, jumps, jump_counts, t_start, t_end, t_out, out, out_dynamic,
                    logs, rtol, atol, max_steps, status):
    """Integrate every reactor of the batch (rows), in parallel; status[i] = (code, accepted, rejected, logs)."""
    for i in prange(y0.shape[0]):
        code, accepted, rejected, n_log = integrate_reactor(
            y0[i], params[i], controls[i], event_times[i], event_kinds[i], event_values[i], event_counts[i],
            times, values, counts, jumps, jump_counts, t_start, t_end, t_out, out[i], out_dynamic[i],
            logs[i], rtol, atol, max_steps,
        )
        status[i, 0] = code
        status[i, 1] = accepted
        status[i, 2] = rejected
        status[i, 3] = n_log
