"""Piecewise-linear time tables (forcing): defined for every time, with jumps at repeated times.

A table is (times, values) with times non-decreasing; a repeated time t_k = t_{k+1} is a jump.
The value is linear between knots, right-continuous at jumps (the ``left`` flag gives the left limit,
used at the end of an integration segment that stops at the jump), and constant beyond both ends:
no index errors and no extrapolation surprises.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, error_model="numpy")
def table_value(times: np.ndarray, values: np.ndarray, count: int, t: float, left: bool) -> float:
    """Value of the table (first ``count`` knots) at time t; left limit at a jump if ``left``."""
    # side "left": times[k-1] < t <= times[k]; side "right": times[k-1] <= t < times[k].
    if left:
        k = np.searchsorted(times[:count], t, side="left")
    else:
        k = np.searchsorted(times[:count], t, side="right")
    if k == 0:
        return values[0]
    if k >= count:
        return values[count - 1]
    t0, t1 = times[k - 1], times[k]
    return values[k - 1] + (values[k] - values[k - 1]) * (t - t0) / (t1 - t0)


@njit(cache=True, error_model="numpy")
def next_jump(jumps: np.ndarray, count: int, t: float) -> float:
    """First jump time strictly after t (inf if none)."""
    k = np.searchsorted(jumps[:count], t, side="right")
    return jumps[k] if k < count else np.inf


def jump_times(times: np.ndarray) -> np.ndarray:
    """Times at which a table jumps (repeated knots)."""
    times = np.asarray(times, dtype=float)
    return np.unique(times[1:][np.diff(times) == 0.0])


def pack_tables(tables: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, ...]:
    """Stack tables into padded 2-D arrays (times, values, counts, jumps, jump_counts) for compiled code."""
    for times, values in tables:
        if len(times) == 0 or len(times) != len(values):
            raise ValueError("a table needs one or more knots and as many values as times")
        if np.any(np.diff(times) < 0):
            raise ValueError("table times must be non-decreasing")
    width = max(len(t) for t, _ in tables)
    jumps = [jump_times(t) for t, _ in tables]
    jump_width = max(1, max(len(j) for j in jumps))
    n = len(tables)
    times_2d = np.zeros((n, width))
    values_2d = np.zeros((n, width))
    counts = np.zeros(n, dtype=np.int64)
    jumps_2d = np.full((n, jump_width), np.inf)
    jump_counts = np.zeros(n, dtype=np.int64)
    for i, ((times, values), jump) in enumerate(zip(tables, jumps, strict=True)):
        counts[i] = len(times)
        times_2d[i, : len(times)] = times
        times_2d[i, len(times) :] = times[-1]
        values_2d[i, : len(values)] = values
        values_2d[i, len(values) :] = values[-1]
        jump_counts[i] = len(jump)
        jumps_2d[i, : len(jump)] = jump
    return times_2d, values_2d, counts, jumps_2d, jump_counts
