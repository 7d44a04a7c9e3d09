"""The model's expected growth rate live: fusion.expected_rate's causal condition readings, streamed frame by
frame for many units.

Per unit and model-input sensor (``MODEL_INPUT_SENSORS``) the state is the last ``MEDIAN_SAMPLES`` plausible
readings, the first one repeated until there are that many, so the running median at each row is exactly
what :func:`~algaflow.fusion.expected_rate.causal_reading` gives on the whole record; and the last μ_model
read, from which the next increment is taken (:func:`~algaflow.fusion.expected_rate.rate_increments`).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from algaflow.fusion.expected_rate import MEDIAN_SAMPLES, MODEL_INPUT_SENSORS, plausible


@njit(cache=True)
def _advance(unit_index, values, buffers, started, medians, save, saved) -> None:  # fmt: skip
    sensors, width = buffers.shape[1], buffers.shape[2]
    for k in range(unit_index.shape[0]):
        u = unit_index[k]
        for s in range(sensors):
            value = values[k, s]
            if value == value:  # a plausible reading
                if started[u, s] == 0.0:
                    buffers[u, s, :] = value
                    started[u, s] = 1.0
                else:
                    buffers[u, s, : width - 1] = buffers[u, s, 1:]
                    buffers[u, s, width - 1] = value
            medians[k, s] = np.median(buffers[u, s]) if started[u, s] != 0.0 else np.nan
        if save[k]:
            saved[k, : sensors * width] = buffers[u].ravel()
            saved[k, sensors * width :] = started[u]


class OnlineConditions:
    """The model-input sensors' running medians for a growing set of units (module doc)."""

    STATE_ARRAYS = ("buffers", "started")

    def __init__(self) -> None:
        self.buffers = np.empty((0, len(MODEL_INPUT_SENSORS), MEDIAN_SAMPLES))
        self.started = np.empty((0, len(MODEL_INPUT_SENSORS)))
        self.saved = np.empty((0, self.width))

    @property
    def units(self) -> int:
        return self.buffers.shape[0]

    @property
    def width(self) -> int:
        """Numbers in one unit's state (:meth:`unit_state`)."""
        return len(MODEL_INPUT_SENSORS) * (MEDIAN_SAMPLES + 1)

    def add_unit(self) -> int:
        """A new unit without readings; returns its index."""
        self.buffers = np.concatenate([self.buffers, np.full((1, *self.buffers.shape[1:]), np.nan)])
        self.started = np.concatenate([self.started, np.zeros((1, self.started.shape[1]))])
        return self.units - 1

    def update(self, unit_index: np.ndarray, readings: dict[str, np.ndarray],
               save: np.ndarray | None = None) -> np.ndarray:  # fmt: skip
        """Advance by rows in the order given (a unit's in time order): ``readings`` maps sensors to their value
        at each row (NaN where none; any sensor not a model input is ignored). Returns each row's running median
        of every model-input sensor, (rows, ``MODEL_INPUT_SENSORS``), NaN before a sensor's first plausible
        reading. ``save``: rows after which the unit's state is kept (:attr:`saved`, as :meth:`unit_state`)."""
        unit_index = np.ascontiguousarray(unit_index, dtype=np.int64)
        rows = unit_index.size
        if rows and (unit_index.min() < 0 or unit_index.max() >= self.units):
            raise IndexError(f"unit index out of range ({self.units} units)")
        values = np.full((rows, len(MODEL_INPUT_SENSORS)), np.nan)
        for column, sensor in enumerate(MODEL_INPUT_SENSORS):
            if sensor in readings:
                values[:, column] = plausible(sensor, readings[sensor])
        save = np.zeros(rows, dtype=bool) if save is None else np.ascontiguousarray(save, dtype=bool)
        medians = np.empty_like(values)
        self.saved = np.full((rows if save.any() else 0, self.width), np.nan)
        _advance(unit_index, values, self.buffers, self.started, medians, save,
                 self.saved if save.any() else np.empty((1, self.width)))  # fmt: skip
        return medians

    def unit_state(self, index: int) -> np.ndarray:
        return np.concatenate([self.buffers[index].ravel(), self.started[index]])

    def set_unit_state(self, index: int, flat: np.ndarray) -> None:
        flat = np.asarray(flat, dtype=float)
        if flat.size != self.width:
            raise ValueError(f"a unit's condition state has {self.width} numbers, not {flat.size}")
        size = self.buffers[index].size
        self.buffers[index] = flat[:size].reshape(self.buffers[index].shape)
        self.started[index] = flat[size:]

    def state(self) -> dict[str, np.ndarray]:
        return {f"conditions_{name}": getattr(self, name).copy() for name in self.STATE_ARRAYS}

    @classmethod
    def from_state(cls, state: dict[str, np.ndarray]) -> OnlineConditions:
        conditions = cls()
        for name in cls.STATE_ARRAYS:
            array = np.array(state[f"conditions_{name}"], dtype=float)
            if array.shape[1:] != getattr(conditions, name).shape[1:]:
                raise ValueError(f"condition state {name} of shape {array.shape} is not this release's")
            setattr(conditions, name, array)
        return conditions
