"""What a live reader knows at a time: the last sample at or before it; where a late input lands: the first
sample at or after it."""

from __future__ import annotations

import numpy as np


def last_sample_index(sample_times_h: np.ndarray, times_h: np.ndarray) -> np.ndarray:
    """Index of the last of the ascending ``sample_times_h`` at or before each of ``times_h`` (−1 before the
    first sample)."""
    return np.searchsorted(np.asarray(sample_times_h, dtype=float), np.asarray(times_h, dtype=float),
                           side="right") - 1  # fmt: skip


def held_values(sample_times_h: np.ndarray, values: np.ndarray, times_h: np.ndarray, hold_h: float) -> np.ndarray:
    """The last of ``values`` (at the ascending ``sample_times_h``) at or before each of ``times_h``, held for
    ``hold_h`` hours after its sample; NaN before the first sample and once it is older than that."""
    sample_times_h = np.asarray(sample_times_h, dtype=float)
    times_h = np.asarray(times_h, dtype=float)
    if sample_times_h.size == 0:
        return np.full(times_h.shape, np.nan)
    index = last_sample_index(sample_times_h, times_h)
    last = np.maximum(index, 0)
    fresh = (index >= 0) & (times_h - sample_times_h[last] <= hold_h)
    return np.where(fresh, np.asarray(values, dtype=float)[last], np.nan)


def place_on_samples(item_times: np.ndarray, sample_times: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each item (a harvest, a dry weight, any late input at time tᵢ) on the first sample at or after it.

        kᵢ = min{ j : s_j ≥ tᵢ },   placedᵢ = (kᵢ exists)

    with s the ascending ``sample_times`` (n of them) and t the ``item_times`` (same unit; any shape, int or
    float). An item at a sample's time lands on that sample; one before the first sample on sample 0; one
    after the last sample (or a NaN time) on none: kᵢ = n there and placedᵢ False, so that ``k[placed]``
    indexes the samples (several items may share one). Returns (k, placed), each of the items' shape."""
    sample_times = np.asarray(sample_times)
    index = np.searchsorted(sample_times, np.asarray(item_times), side="left")
    return index, index < sample_times.size
