"""Fixed-lag smoothing on a chain factor graph, online, with late and out-of-order measurements.

The window holds the chain's last steps t_a … t_b (t_b − t_a ≤ lag) and, before it, the filtered belief
at the step that left it last (the base: a prior factor summarising everything older). Each step j has its
process factor p(x_j | x_{j−1}) = N(F_j x_{j−1}, Q_j), F_j, Q_j = process(t_j − t_{j−1}), and the
measurement factors that have arrived for it, stacked into one: y_j = H_j x_j + v_j, R_j block-diagonal
(independent factors), NaN rows absent.

* A measurement for a time already in the window joins that step's factor; one for a time between two
  steps inserts a new step (the next step's process factor is recomputed from the shorter Δt). In both
  cases the forward messages are recomputed from that step on: the window's beliefs are then exactly
  those of a batch filter that had every measurement in place from the start.
* Inserting a step with no measurement changes nothing downstream when the process factor is the exact
  discretisation of a linear SDE (F(Δ₁)F(Δ₂) = F(Δ₁ + Δ₂), Q composing likewise), as for
  :func:`algaflow.fusion.growth.process_factor`.
* A measurement older than the window is refused with its reason (its step is already summarised).
* Smoothing is the RTS backward pass over the window; for steps in the window it equals the RTS smoother
  over the whole record (the backward messages from later steps are all in the window).

Units share the step times (a fleet on a common clock, NaN where a unit has no sample); every array has a
leading unit axis, one reactor is a batch of one.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numba import njit, prange

from algaflow.fusion.gaussian import SmootherResult, backward_pass, predict, update

ProcessFactor = Callable[[float], tuple[np.ndarray, np.ndarray]]


@njit(cache=True, error_model="numpy", parallel=True)
def _filter_step(previous_mean, previous_cov, transition, process_noise, observation, observation_noise,
                 measurement, predicted_mean, predicted_cov, mean, cov):  # fmt: skip
    for u in prange(previous_mean.shape[0]):
        predict(previous_mean[u], previous_cov[u], transition[u], process_noise[u], predicted_mean[u],
                predicted_cov[u])
        if observation.shape[1] == 0:
            mean[u] = predicted_mean[u]
            cov[u] = predicted_cov[u]
        else:
            update(predicted_mean[u], predicted_cov[u], observation[u], observation_noise[u], measurement[u],
                   mean[u], cov[u])


@dataclass(slots=True)
class _Step:
    """One step of the window: its factors (for every unit) and its forward messages."""

    time_h: float
    transition: np.ndarray  # (units, n, n)
    process_noise: np.ndarray
    observation: np.ndarray  # (units, m, n), m = rows of every factor that arrived for this step
    observation_noise: np.ndarray  # (units, m, m), block-diagonal
    measurement: np.ndarray  # (units, m), NaN where a unit has no value
    predicted_mean: np.ndarray  # (units, n)
    predicted_cov: np.ndarray
    mean: np.ndarray
    cov: np.ndarray


class FixedLagSmoother:
    """Online fixed-lag smoother (module doc). ``process(dt_h)`` returns (F, Q), shaped (n, n) or
    (units, n, n); the prior N(prior_mean, prior_cov) is the belief just before the first step."""

    def __init__(self, prior_mean: np.ndarray, prior_cov: np.ndarray, lag_h: float, process: ProcessFactor,
                 start_h: float = 0.0) -> None:  # fmt: skip
        if not lag_h > 0:
            raise ValueError(f"lag_h must be > 0 (got {lag_h})")
        self._base_mean = np.array(np.atleast_2d(prior_mean), dtype=float)
        units, n = self._base_mean.shape
        self._base_cov = np.array(np.broadcast_to(prior_cov, (units, n, n)), dtype=float)
        self._base_time = float(start_h)
        self.lag_h = float(lag_h)
        self._process = process
        self._steps: list[_Step] = []
        self._summarised = False  # whether steps have left the window (the base is then a step's posterior)
        self.refused: list[tuple[float, str]] = []  # (time, reason) of measurements it could not take

    @property
    def units(self) -> int:
        return self._base_mean.shape[0]

    @property
    def times_h(self) -> np.ndarray:
        return np.array([step.time_h for step in self._steps])

    def _factors(self, dt_h: float) -> tuple[np.ndarray, np.ndarray]:
        transition, noise = self._process(dt_h)
        n = self._base_mean.shape[1]
        shape = (self.units, n, n)
        return (np.ascontiguousarray(np.broadcast_to(transition, shape), dtype=float),
                np.ascontiguousarray(np.broadcast_to(noise, shape), dtype=float))  # fmt: skip

    def _new_step(self, time_h: float, previous_time_h: float) -> _Step:
        units, n = self._base_mean.shape
        transition, noise = self._factors(time_h - previous_time_h)
        return _Step(time_h, transition, noise, np.zeros((units, 0, n)), np.zeros((units, 0, 0)),
                     np.zeros((units, 0)), np.empty((units, n)), np.empty((units, n, n)), np.empty((units, n)),
                     np.empty((units, n, n)))  # fmt: skip

    def measure(self, time_h: float, observation: np.ndarray, noise: np.ndarray, values: np.ndarray) -> bool:
        """Add the factor y = H x + v, v ~ N(0, R) at ``time_h`` for every unit (``values`` (units, m), NaN
        where a unit has none; H (m, n) or (units, m, n); R (m, m) or (units, m, m)). Returns False, with the
        reason in :attr:`refused`, if it is older than the window or not finite."""
        units, n = self._base_mean.shape
        values = np.asarray(values, dtype=float).reshape(units, -1)
        m = values.shape[1]
        observation = np.broadcast_to(np.asarray(observation, dtype=float), (units, m, n))
        noise = np.broadcast_to(np.asarray(noise, dtype=float), (units, m, m))
        if not np.isfinite(time_h):
            self.refused.append((time_h, "time is not finite"))
            return False
        if time_h < self._base_time or (self._summarised and time_h <= self._base_time):
            self.refused.append((time_h, f"older than the window (it starts after {self._base_time:.4g} h)"))
            return False
        index = bisect.bisect_left(self._steps, time_h, key=lambda step: step.time_h)
        if index == len(self._steps) or self._steps[index].time_h != time_h:
            previous = self._steps[index - 1].time_h if index > 0 else self._base_time
            self._steps.insert(index, self._new_step(time_h, previous))
            if index + 1 < len(self._steps):  # the next step's interval got shorter
                following = self._steps[index + 1]
                following.transition, following.process_noise = self._factors(following.time_h - time_h)
        step = self._steps[index]
        rows = step.observation.shape[1]
        step.observation = np.concatenate([step.observation, observation], axis=1)
        step.measurement = np.concatenate([step.measurement, values], axis=1)
        stacked = np.zeros((units, rows + m, rows + m))
        stacked[:, :rows, :rows] = step.observation_noise
        stacked[:, rows:, rows:] = noise
        step.observation_noise = stacked
        self._refilter(index)
        self._forget()
        return True

    def advance(self, time_h: float) -> None:
        """Open a step at ``time_h`` with no measurement (the prediction), e.g. to read the belief now."""
        if self._steps and time_h <= self._steps[-1].time_h:
            return
        units, n = self._base_mean.shape
        self.measure(time_h, np.zeros((0, n)), np.zeros((0, 0)), np.zeros((units, 0)))

    def _refilter(self, first: int) -> None:
        for j in range(first, len(self._steps)):
            step = self._steps[j]
            previous_mean = self._steps[j - 1].mean if j > 0 else self._base_mean
            previous_cov = self._steps[j - 1].cov if j > 0 else self._base_cov
            _filter_step(previous_mean, previous_cov, step.transition, step.process_noise,
                         np.ascontiguousarray(step.observation), np.ascontiguousarray(step.observation_noise),
                         np.ascontiguousarray(step.measurement), step.predicted_mean, step.predicted_cov,
                         step.mean, step.cov)  # fmt: skip

    def _forget(self) -> None:
        """Steps more than ``lag_h`` behind the newest leave the window; the last to leave becomes the base."""
        newest = self._steps[-1].time_h
        while len(self._steps) > 1 and self._steps[0].time_h < newest - self.lag_h:
            gone = self._steps.pop(0)
            self._base_mean, self._base_cov, self._base_time = gone.mean, gone.cov, gone.time_h
            self._summarised = True

    def filtered(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(times (steps,), mean (units, steps, n), cov (units, steps, n, n)) of the forward pass."""
        return (self.times_h, np.stack([s.mean for s in self._steps], axis=1),
                np.stack([s.cov for s in self._steps], axis=1))  # fmt: skip

    def smoothed(self) -> tuple[np.ndarray, SmootherResult]:
        """Times and RTS-smoothed moments of every step in the window, given everything received."""
        times, mean, cov = self.filtered()
        predicted_mean = np.stack([s.predicted_mean for s in self._steps], axis=1)
        predicted_cov = np.stack([s.predicted_cov for s in self._steps], axis=1)
        transition = np.stack([s.transition for s in self._steps], axis=1)
        smooth_mean = np.empty_like(mean)
        smooth_cov = np.empty_like(cov)
        gain = np.empty_like(cov)
        backward_pass(mean, cov, predicted_mean, predicted_cov, transition, smooth_mean, smooth_cov, gain)
        return times, SmootherResult(smooth_mean, smooth_cov, gain)
