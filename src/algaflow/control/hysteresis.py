"""A flag with hysteresis along time, vectorised: the flag switches on at a ``turn_on`` sample, off at a
``turn_off`` sample, and otherwise keeps its value, starting from ``previous``. With the two conditions
exclusive (an on threshold above the off threshold), the flag at sample k is therefore the kind of the last
deciding sample at or before k:

    flag_k = turn_on_j  for j = max{i ≤ k : turn_on_i ∨ turn_off_i},   or previous if there is none,

which is a running maximum of indices instead of a loop over samples.
"""

from __future__ import annotations

import numpy as np


def latch(turn_on: np.ndarray, turn_off: np.ndarray, previous: np.ndarray | bool | None = None) -> np.ndarray:
    """Flags along the last axis (module doc), independently per leading index; ``previous`` has the leading
    shape (default off). ``turn_on`` and ``turn_off`` must not both hold at one sample."""
    turn_on, turn_off = np.broadcast_arrays(np.asarray(turn_on, dtype=bool), np.asarray(turn_off, dtype=bool))
    if (turn_on & turn_off).any():
        raise ValueError("a sample cannot both switch the flag on and off")
    start = np.zeros(turn_on.shape[:-1], dtype=bool) if previous is None else np.asarray(previous, dtype=bool)
    samples = turn_on.shape[-1]
    deciding = np.where(turn_on | turn_off, np.arange(samples), -1)
    last = np.maximum.accumulate(deciding, axis=-1) if samples else deciding
    decided = np.take_along_axis(turn_on, np.maximum(last, 0), axis=-1) if samples else turn_on
    return np.where(last >= 0, decided, np.broadcast_to(start[..., None], turn_on.shape))


__all__ = ["latch"]
