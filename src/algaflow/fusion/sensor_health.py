"""A sensor fault that no single sample shows: a stuck sensor.

Stuck: a healthy sensor whose noise sd σ is at least its resolution q rarely repeats a quantised value:
``run`` equal readings in a row happen by chance with probability per sample
≈ Σ_bins p_bin^run ≈ (q/σ)^(run−1) / ((2π)^((run−1)/2) √run), about 10⁻⁷ for OD750 (q = 0.001,
σ = 0.005) at run = 7, one false alarm in ~20 years of 1-min samples. A sensor whose noise is below its
resolution repeats legitimately and is not judged (None is returned).

A drifting sensor cannot be told from growth by one biomass sensor alone (an additive drift and a
slightly faster culture fit the same OD curve); it is found against other sensors of the same quantity
by fusion.sensor_information.
"""

from __future__ import annotations

import numpy as np

STUCK_RUN = 7


def stuck_samples(values: np.ndarray, noise_sd: float, resolution: float, run: int = STUCK_RUN) -> np.ndarray | None:
    """Causal stuck flags: True from the ``run``-th equal reading in a row on (NaN breaks no run: dropouts are
    skipped). None when the sensor's noise is below its resolution (repeats carry no evidence)."""
    values = np.asarray(values, dtype=float)
    if not noise_sd >= max(resolution, 1e-12):
        return None
    flags = np.zeros(values.size, dtype=bool)
    finite = np.flatnonzero(np.isfinite(values))
    if finite.size < run:
        return flags
    present = values[finite]
    tolerance = 0.5 * resolution if resolution > 0 else 0.0
    repeats = np.abs(np.diff(present)) <= tolerance
    # Equal readings in a row ending at each sample: position minus the start of its run, plus one.
    position = np.arange(present.size)
    run_start = np.maximum.accumulate(np.where(np.r_[True, ~repeats], position, 0))
    length = position - run_start + 1
    flags[finite[length >= run]] = True
    return flags
