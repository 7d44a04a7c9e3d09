"""Sensor glitches that a single reading does not show: stuck runs, spikes, level jumps, saturation.

Stuck: a healthy sensor whose noise sd σ is at least its resolution q rarely repeats a quantised value:
``run`` equal readings in a row happen by chance with probability per sample
≈ Σ_bins p_bin^run ≈ (q/σ)^(run−1) / ((2π)^((run−1)/2) √run), about 10⁻⁷ for OD750 (q = 0.001,
σ = 0.005) at run = 7, one false alarm in ~20 years of 1-min samples. A sensor whose noise is below its
resolution repeats legitimately and is not judged (None is returned).

Spikes (bubbles on a pH or DO membrane): a Hampel-type identifier, centred over ``window`` neighbours
each side, flags |y_k − med| > k_s σ̂ with σ̂ the record's robust noise sd (:func:`robust_noise_sd`) and
k_s = 6.

Level jumps (a temperature probe re-seated, a pH electrode knocked): with the medians of three adjacent
windows of w samples, A = [k − 2w, k), B = [k − w, k), C = [k, k + w), the trend from A to B is taken
out of the step from B to C, J_k = (med C − med B) − (med B − med A), and a jump is flagged where |J_k|
exceeds k_j √6 × 1.2533 σ_w/√w (the sd of J for noise alone, σ_w the noise sd from the MAD of
first differences / √2, at least the catalog σ) with the step between B and C (|C − B| > |B − A|): a
diurnal swing or a steady ramp gives J ≈ 0, a step gives J equal to its height. Each run of such k is
one jump, placed where the difference of the window means peaks, and kept only if it is sharp: the
medians of the 3 samples either side differ by at least 0.7 |J| (a probe glitch steps between two
samples; pH after the lamp switches, a real change, ramps over many minutes and is not a glitch).

Gaps: the share of the samples missing, against the sensor's own sampling period
(:func:`sampling_period_h`, the lower quartile of its intervals).

Saturation: readings at or beyond the catalog range, or ``run`` or more equal readings at the record's
own maximum or minimum (an analyser pinned below its nominal range, as a CO2 sensor near 80,000 ppm).

Drift: a slow drift cannot be told from growth by one biomass sensor alone (an additive drift and a
slightly faster culture fit the same OD curve; one faster than any culture grows is found by
fusion.growth_limit); it is found, causally, against a second reading of the
same quantity in the same unit (:func:`drifting_samples`): with D = own − other, its median D₀ over the
first ``window`` joint samples and D_k over the last ``window`` up to k, a drift is flagged where

    |D_k − D₀| > k_d se + ε |R_k − R₀| + τ,   se = 1.2533 σ_D √(2 / window),   k_d = 5

se the sd of a difference of two medians of ``window`` samples of noise σ_D (the catalog's combined sd,
or the record's own over the first window if larger), R the other reading's medians over the same
windows, ε the relative slope error allowed between the two (a calibration slope error moves D with
the level, not with time) and τ an absolute change allowed (two pH electrodes' calibration accuracy;
0 for biomass sensors). A drift of r per sample is flagged about (k_d se)/r + window/2 samples after it
starts on a steady culture; a culture that grows or is harvested meanwhile widens the ε term.

The median's lag (window/2 samples) would hold a fast drift back for half an hour at 1-min samples, so
the standardised difference also feeds Page's two-sided CUSUM: the part of e_k = (D_k − D₀)/σ_D beyond
what the slope error allows, clipped to ±c (a bubble spike in one sensor adds at most c − ν),

    u_k = sign(e_k) min(c, max(0, |e_k| − (ε |R_k − R₀| + τ) / σ_D)),
    S⁺_k = min(S_max, max(0, S⁺_{k−1} + u_k − ν)),   S⁻_k = min(S_max, max(0, S⁻_{k−1} − u_k − ν)),
    flagged while max(S⁺_k, S⁻_k) > h

(ν = 0.75, h = 10, c = 2, S_max = 2h so that the flag clears within 2h/ν samples once D is back). A ramp
of r σ_D per sample on a steady level, noise aside, reaches h at the first n with
Σ_{i≤n} max(0, min(r i, c) − ν) > h: 9 samples at 1 σ/sample, 22 at 0.1, 80 at 1/60, where the median
test (98) comes close. Without drift the run length to a false alarm is, by Siegmund's approximation,
(e^{2νb} − 2νb − 1)/(2ν²) with b = h + 1.166: 1.7·10⁷ samples a side with D₀ exact, 7.5·10⁵ (1.4 years of
1-min samples) with D₀ off by its standard error 1.2533 σ_D/√window, which takes ν down to 0.59 (clipping
only lengthens it).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit
from scipy.ndimage import median_filter

STUCK_RUN = 7


def stuck_samples(values: np.ndarray, noise_sd: float, resolution: float, run: int = STUCK_RUN,
                  state: np.ndarray | None = None) -> np.ndarray | None:  # fmt: skip
    """Causal stuck flags: True from the ``run``-th equal reading in a row on (NaN breaks no run: dropouts are
    skipped). None when the sensor's noise is below its resolution (repeats carry no evidence). ``state``:
    (last finite reading, length of its run) before the first value, updated in place, so a live reader
    that calls this frame by frame gets the flags of the whole record (default: no reading before)."""
    values = np.asarray(values, dtype=float)
    tolerance = stuck_tolerance(noise_sd, resolution)
    if not np.isfinite(tolerance):
        return None
    state = np.array([[np.nan, 0.0]]) if state is None else state.reshape(1, 2)
    flags = np.zeros(values.size, dtype=bool)
    stuck_runs(np.ascontiguousarray(values), np.array([0]), np.array([values.size]), np.array([tolerance]), run,
               state, flags, np.zeros(values.size, dtype=np.bool_), np.empty((values.size, 2)))  # fmt: skip
    return flags


def stuck_tolerance(noise_sd: float, resolution: float) -> float:
    """How close two readings are to count as equal in a stuck run (half the resolution); NaN where the noise is
    below the resolution, so repeats carry no evidence and are not judged."""
    if not noise_sd >= max(resolution, 1e-12):
        return float("nan")
    return 0.5 * resolution if resolution > 0 else 0.0


@njit(cache=True)
def stuck_runs(values, starts, ends, tolerance, run, state, flags, saves, saved) -> None:  # fmt: skip
    """:func:`stuck_samples` on several records at once: record j is ``values[starts[j]:ends[j]]`` with readings
    equal within ``tolerance[j]`` (NaN where the record's sensor is not judged: no flags), its run so far in
    ``state[j]`` (last reading, run length; updated); ``saved[k]`` gets the state after each sample of ``saves``."""
    for j in range(starts.size):
        last, length = state[j, 0], state[j, 1]
        for k in range(starts[j], ends[j]):
            value = values[k]
            if value == value and tolerance[j] == tolerance[j]:
                length = length + 1.0 if length > 0.0 and abs(value - last) <= tolerance[j] else 1.0
                last = value
                flags[k] = length >= run
            if saves[k]:
                saved[k, 0], saved[k, 1] = last, length
        state[j, 0], state[j, 1] = last, length


SPIKE_SIGMAS = 6.0
JUMP_SIGMAS = 6.0
SHARP_SAMPLES = 3


def _centred_windows(values: np.ndarray, window: int) -> np.ndarray:
    """(samples, 2·window + 1) neighbourhoods, edge samples repeated at the ends."""
    padded = np.pad(values, window, mode="edge")
    return np.lib.stride_tricks.sliding_window_view(padded, 2 * window + 1)


def spike_samples(values: np.ndarray, noise_sd: float, window: int = 5, sigmas: float = SPIKE_SIGMAS) -> np.ndarray:
    """Hampel spikes among the finite readings (module doc); NaN samples are never flagged."""
    values = np.asarray(values, dtype=float)
    flags = np.zeros(values.size, dtype=bool)
    finite = np.flatnonzero(np.isfinite(values))
    if finite.size < 2 * window + 1:
        return flags
    present = values[finite]
    median = np.median(_centred_windows(present, window), axis=1)
    flags[finite] = np.abs(present - median) > sigmas * robust_noise_sd(present, noise_sd)
    return flags


def robust_noise_sd(values: np.ndarray, noise_sd: float) -> float:
    """The record's own noise sd, 1.4826 MAD(first differences)/√2 (spikes and jumps barely move it), but
    not below half the catalog's σ (a quantised or smooth record would otherwise make every wiggle a spike)."""
    differences = np.diff(values)
    estimate = 1.4826 * np.median(np.abs(differences - np.median(differences))) / np.sqrt(2.0)
    return float(max(estimate, 0.5 * noise_sd, 1e-12))


def jump_samples(values: np.ndarray, noise_sd: float, window: int = 15, sigmas: float = JUMP_SIGMAS) -> np.ndarray:
    """The first sample after each level jump (module doc); NaN samples are skipped."""
    values = np.asarray(values, dtype=float)
    flags = np.zeros(values.size, dtype=bool)
    finite = np.flatnonzero(np.isfinite(values))
    count = finite.size
    if count < 3 * window + 1:
        return flags
    present = values[finite]
    medians = np.median(np.lib.stride_tricks.sliding_window_view(present, window), axis=1)  # med of [i, i + w)
    index = np.arange(2 * window, count - window + 1)
    before_trend, before, after = medians[index - 2 * window], medians[index - window], medians[index]
    step, trend = after - before, before - before_trend
    jump = step - trend
    noise = max(robust_noise_sd(present, noise_sd), noise_sd)
    threshold = sigmas * np.sqrt(6.0) * 1.2533 * noise / np.sqrt(window)
    # The step must lie between B and C (not A and B: there the same jump echoes with the other sign).
    candidate = (np.abs(jump) > threshold) & (np.abs(step) > np.abs(trend))
    if not candidate.any():
        return flags
    # Each cluster of candidates is one jump, placed where the difference of the window means peaks
    # (the medians' profile is flat across ±w/2; the means' is a triangle with its apex at the step).
    running = np.concatenate([[0.0], np.cumsum(present)])
    mean_step = np.abs((running[index + window] - running[index]) - (running[index] - running[index - window]))
    positions = np.flatnonzero(candidate)
    cluster = np.cumsum(np.r_[True, np.diff(positions) > window])
    for label in np.unique(cluster):
        members = positions[cluster == label]
        best = members[np.argmax(mean_step[members])]
        k = index[best]
        # A glitch steps between two samples; a physical change (pH when the lamp switches) ramps over many.
        sharp = abs(np.median(present[k:k + SHARP_SAMPLES]) - np.median(present[k - SHARP_SAMPLES:k]))
        if sharp >= 0.7 * abs(jump[best]):
            flags[finite[k]] = True
    return flags


DRIFT_WINDOW = 61  # odd: one middle sample, the median of the trailing window
DRIFT_SIGMAS = 5.0
CUSUM_ALLOWANCE = 0.75  # ν, in σ_D
CUSUM_THRESHOLD = 10.0  # h, in σ_D
CUSUM_CLIP = 2.0  # c: the most one sample can add is c − ν


def trailing_median(values: np.ndarray, window: int) -> np.ndarray:
    """Median of each sample and the ``window`` − 1 before it (the first ones padded with the first value)."""
    return median_filter(values, size=window, mode="nearest", origin=(window - 1) // 2)


# A drift test's state (:func:`drift_update`): joint samples seen, the reference window's medians of the
# difference and of the other reading, the spread, Page's two sums; beside it the last ``window`` differences
# and other readings (a ring).
DRIFT_COUNT, DRIFT_REFERENCE, DRIFT_LEVEL, DRIFT_SPREAD, DRIFT_UP, DRIFT_DOWN = range(6)
DRIFT_STATE = 6


def drift_state(window: int = DRIFT_WINDOW) -> tuple[np.ndarray, np.ndarray]:
    """A fresh drift test (:func:`drift_update`): its scalars and its ring of (difference, other reading)."""
    return np.zeros(DRIFT_STATE), np.full((2, window), np.nan)


@njit(cache=True)
def drift_update(own: float, other: float, noise_sd: float, sigmas: float, slope_tolerance: float, tolerance: float,
                 state: np.ndarray, ring: np.ndarray) -> bool:  # fmt: skip
    """One sample of the causal drift test of the module doc (the median test, then Page's CUSUM), with the
    state of the samples before it; False where either reading is missing (not a joint sample)."""
    if not (own == own and other == other):
        return False
    window = ring.shape[1]
    count = int(state[DRIFT_COUNT])
    difference = own - other
    ring[0, count % window] = difference
    ring[1, count % window] = other
    count += 1
    state[DRIFT_COUNT] = count
    if count < window:
        return False
    if count == window:  # the reference window: the first ``window`` joint samples
        first = np.median(ring[0])
        state[DRIFT_REFERENCE], state[DRIFT_LEVEL] = first, np.median(ring[1])
        state[DRIFT_SPREAD] = max(noise_sd, 1.4826 * np.median(np.abs(ring[0] - first)))
    first, first_level, spread = state[DRIFT_REFERENCE], state[DRIFT_LEVEL], state[DRIFT_SPREAD]
    standard_error = 1.2533 * spread * np.sqrt(2.0 / window)
    threshold = sigmas * standard_error + slope_tolerance * abs(np.median(ring[1]) - first_level) + tolerance
    flagged = abs(np.median(ring[0]) - first) > threshold
    if count > window:  # Page's CUSUM from the sample after the reference window
        standardised = (difference - first) / spread
        band = (slope_tolerance * abs(other - first_level) + tolerance) / spread
        state[DRIFT_UP], state[DRIFT_DOWN] = page_step(state[DRIFT_UP], state[DRIFT_DOWN], standardised, band)
        flagged = flagged or max(state[DRIFT_UP], state[DRIFT_DOWN]) > CUSUM_THRESHOLD
    return flagged


@njit(cache=True)
def page_step(upper: float, lower: float, standardised: float, band: float) -> tuple[float, float]:
    """One step of Page's two-sided CUSUM (module doc): the part of the standardised difference beyond the
    allowed ``band``, clipped to ±c, added to S⁺ and taken from S⁻ less ν, each capped at 2h."""
    residual = math.copysign(max(0.0, abs(standardised) - band), standardised)
    clipped = min(max(residual, -CUSUM_CLIP), CUSUM_CLIP)
    cap = 2.0 * CUSUM_THRESHOLD
    return (min(cap, max(0.0, upper + clipped - CUSUM_ALLOWANCE)),
            min(cap, max(0.0, lower - clipped - CUSUM_ALLOWANCE)))  # fmt: skip


@njit(cache=True)
def _drift_run(own, other, noise_sd, sigmas, slope_tolerance, tolerance, state, ring, flags) -> None:  # fmt: skip
    for k in range(own.size):
        flags[k] = drift_update(own[k], other[k], noise_sd, sigmas, slope_tolerance, tolerance, state, ring)


def drifting_samples(own: np.ndarray, other: np.ndarray, noise_sd: float, window: int = DRIFT_WINDOW,
                     sigmas: float = DRIFT_SIGMAS, slope_tolerance: float = 0.0, tolerance: float = 0.0,
                     state: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:  # fmt: skip
    """Causal drift flags of ``own`` against ``other`` (module doc: the median test or Page's CUSUM): two
    readings of one quantity in one unit on the same samples (NaN where either is missing); ``noise_sd`` the
    sd of their difference for noise alone; ``tolerance`` a change of the difference that is no drift (the
    two probes' calibration accuracy), allowed beside the slope band ε |R_k − R₀|. Only samples where both
    are finite can be flagged, from the ``window``-th joint sample on. ``state``: the test's state before the
    first sample (:func:`drift_state`), updated in place, so a live reader that calls this frame by frame
    gets the flags of the whole record."""
    own, other = np.asarray(own, dtype=float), np.asarray(other, dtype=float)
    if own.shape != other.shape:
        raise ValueError(f"own {own.shape} and other {other.shape} must be read on the same samples")
    scalars, ring = drift_state(window) if state is None else state
    if ring.shape != (2, window):
        raise ValueError(f"a drift state's ring holds {ring.shape[1]} samples, not the window's {window}")
    flags = np.zeros(own.size, dtype=bool)
    _drift_run(np.ascontiguousarray(own), np.ascontiguousarray(other), float(noise_sd), float(sigmas),
               float(slope_tolerance), float(tolerance), scalars, ring, flags)  # fmt: skip
    return flags


def sampling_period_h(times_h: np.ndarray, values: np.ndarray, default_h: float) -> float:
    """A sensor's own sampling period: the lower quartile of the intervals between its finite readings, so
    that gaps and dropouts (up to three in four samples) do not stretch it; ``default_h`` (the catalog's)
    with fewer than three readings. A real probe is often read at another period than the catalog's."""
    present = np.sort(np.asarray(times_h, dtype=float)[np.isfinite(values) & np.isfinite(times_h)])
    intervals = np.diff(present)
    intervals = intervals[intervals > 0]
    if intervals.size < 2:
        return default_h
    return float(np.quantile(intervals, 0.25))


def saturated_samples(values: np.ndarray, low: float, high: float, resolution: float,
                      run: int = 3) -> np.ndarray:  # fmt: skip
    """Readings at or beyond the range ends, or in runs of ``run`` equal readings at the record's extremes."""
    values = np.asarray(values, dtype=float)
    finite = np.isfinite(values)
    flags = finite & ((values <= low) | (values >= high))
    if finite.sum() < run:
        return flags
    tolerance = max(0.5 * resolution, 1e-12)
    for extreme in (np.nanmax(values), np.nanmin(values)):
        at = finite & (np.abs(values - extreme) <= tolerance)
        position = np.flatnonzero(at)
        if position.size >= run:
            # Runs of consecutive finite samples at the extreme.
            ordinal = np.cumsum(finite) - 1  # index among finite samples
            steps = np.diff(ordinal[position])
            starts = np.flatnonzero(np.r_[True, steps != 1])
            ends = np.r_[starts[1:], position.size]
            for first, last in zip(starts, ends, strict=True):
                if last - first >= run:
                    flags[position[first:last]] = True
    return flags
