"""What a live reader knows at a time: the last sample at or before it."""

from __future__ import annotations

import numpy as np


def last_sample_index(sample_times_h: np.ndarray, times_h: np.ndarray) -> np.ndarray:
    """Index of the last of the ascending ``sample_times_h`` at or before each of ``times_h`` (−1 before the
    first sample)."""
    return np.searchsorted(np.asarray(sample_times_h, dtype=float), np.asarray(times_h, dtype=float),
                           side="right") - 1  # fmt: skip
