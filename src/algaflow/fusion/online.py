"""The growth chain live: samples arrive one (or a few) at a time, for many units, and each advances only its
own unit's belief (fusion.growth's factor chain, one :func:`~algaflow.fusion.growth_step.growth_step` per sample).

Per unit the state is the chain's posterior N(m, P) over z = (X, μ, b, d), its clock and the current
run of rejected innovations, plus its measurement factor (a :class:`GrowthModel` as an array: each unit
may read a different sensor). A unit's chain starts at its first valid sample, with the prior
:func:`~algaflow.fusion.growth_step.initial_belief` of that sample, its clock at the unit's first sample's time
and any dilution announced before it pending, so its first step spans both: frame by frame this gives exactly
what :func:`~algaflow.fusion.growth.filter_growth` gives on the whole series, which starts its chains the
same way.

The state is a handful of arrays (:meth:`OnlineGrowthFilter.state`), so a service can save it and resume
after a restart.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from algaflow.fusion.growth_model import BIOMASS, GROWTH_RATE, JUMP_CONFIRMATIONS, N_GROWTH_STATE, GrowthModel
from algaflow.fusion.growth_step import (
    N_CLOCK,
    PENDING_SURVIVAL,
    dry_weight_update,
    growth_step,
    initial_belief,
    pre_start_flag,
    start_clock,
    starts_chain,
    step_scratch,
)

# Layout of :meth:`OnlineGrowthFilter.state`: 1 the chain on ln X with a 3-slot clock, 2 the chain on X
# (fusion.growth) with the clock's log-step slot.
STATE_FORMAT = 2


class StateFormatError(ValueError):
    """A saved filter state of another layout than this release's."""


# Per unit, before its chain has started: its first sample's time and the dilution announced since.
FIRST_TIME, PRE_START_LOG_SURVIVAL, STARTED = range(3)


@njit(cache=True, error_model="numpy")
def _advance(unit_index, times_h, values, dilution, rate_input, dry_weight, dry_weight_variance, models, mean, cov,
             clock, rejected, pre_start, flags, out_mean, out_cov, save, saved) -> None:  # fmt: skip
    n = N_GROWTH_STATE
    scratch = step_scratch()
    prior_mean = np.empty(n)
    prior_cov = np.empty((n, n))
    previous_mean = np.empty(n)
    previous_cov = np.empty((n, n))
    transition = np.empty((n, n))
    for k in range(unit_index.shape[0]):
        u = unit_index[k]
        model = models[u]
        time, value = times_h[k], values[k]
        if pre_start[u, STARTED] == 0.0:
            if math.isnan(pre_start[u, FIRST_TIME]) and math.isfinite(time):
                pre_start[u, FIRST_TIME] = time
            if not starts_chain(time, value, model):  # nothing to start from yet: flagged as the batch chain flags it
                pre_start[u, PRE_START_LOG_SURVIVAL] += math.log1p(-dilution[k]) if dilution[k] > 0.0 else 0.0
                flags[k] = pre_start_flag(time, value)
                out_mean[k, :] = math.nan
                out_cov[k, :, :] = math.nan
                continue
            initial_belief(value, model, mean[u], cov[u])
            start_clock(pre_start[u, FIRST_TIME], clock[u])
            clock[u, PENDING_SURVIVAL] = math.exp(pre_start[u, PRE_START_LOG_SURVIVAL])
            rejected[u, :] = 0.0
            pre_start[u, STARTED] = 1.0
        previous_mean[:] = mean[u]
        previous_cov[:, :] = cov[u]
        run = rejected[u, : max(int(model[JUMP_CONFIRMATIONS]), 1)]
        flags[k] = growth_step(time, value, dilution[k], rate_input[k], model, previous_mean, previous_cov, clock[u],
                               run, mean[u], cov[u], prior_mean, prior_cov, transition, scratch)  # fmt: skip
        if math.isfinite(dry_weight[k]):
            dry_weight_update(mean[u], cov[u], dry_weight[k], dry_weight_variance)
        out_mean[k, :] = mean[u]
        out_cov[k, :, :] = cov[u]
        if save[k]:  # the unit's whole chain after this sample, laid out as unit_state gives it
            n_cov, n_clock, n_run = n * n, clock.shape[1], rejected.shape[1]
            saved[k, :n] = mean[u]
            saved[k, n : n + n_cov] = cov[u].ravel()
            saved[k, n + n_cov : n + n_cov + n_clock] = clock[u]
            saved[k, n + n_cov + n_clock : n + n_cov + n_clock + n_run] = rejected[u]
            saved[k, n + n_cov + n_clock + n_run :] = pre_start[u]


class OnlineGrowthFilter:
    """Live growth chains for a growing set of units (module doc). Units are added with their measurement
    factor and addressed by the index :meth:`add_unit` returns."""

    STATE_ARRAYS = ("models", "mean", "cov", "clock", "rejected", "pre_start")

    def __init__(self) -> None:
        self.models = np.empty((0, len(GrowthModel().as_array())))
        self.mean = np.empty((0, N_GROWTH_STATE))
        self.cov = np.empty((0, N_GROWTH_STATE, N_GROWTH_STATE))
        self.clock = np.empty((0, N_CLOCK))
        self.rejected = np.empty((0, 1))
        self.pre_start = np.empty((0, 3))
        self.saved = np.empty((0, 0))  # the chains kept by the last update (its ``save``)

    @property
    def units(self) -> int:
        return self.mean.shape[0]

    def add_unit(self, model: GrowthModel) -> int:
        """A new unit whose samples the chain ``model`` measures; returns its index."""
        array = model.as_array()
        width = max(self.rejected.shape[1], int(array[JUMP_CONFIRMATIONS]), 1)
        rejected = np.zeros((self.units + 1, width))
        rejected[: self.units, : self.rejected.shape[1]] = self.rejected
        self.rejected = rejected
        self.models = np.vstack([self.models, array])
        self.mean = np.concatenate([self.mean, np.full((1, N_GROWTH_STATE), np.nan)])
        self.cov = np.concatenate([self.cov, np.full((1, N_GROWTH_STATE, N_GROWTH_STATE), np.nan)])
        self.clock = np.concatenate([self.clock, np.zeros((1, N_CLOCK))])
        self.pre_start = np.concatenate([self.pre_start, [[np.nan, 0.0, 0.0]]])
        return self.units - 1

    def update(self, unit_index: np.ndarray, times_h: np.ndarray, values: np.ndarray,
               dilution_fraction: np.ndarray | None = None, dry_weight: np.ndarray | None = None,
               dry_weight_sd: float = 0.02, save: np.ndarray | None = None, rate_input: np.ndarray | None = None,
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:  # fmt: skip
        """Advance by samples in the order given (a unit may appear several times, in time order):
        ``dilution_fraction`` is the known fraction removed just before each sample, ``dry_weight`` a manual
        dry weight (g/L, sd ``dry_weight_sd``) taken with it (NaN where none; a factor on X after the OD
        factor, as in :func:`~algaflow.fusion.growth.filter_growth`), ``rate_input`` the model's expected change
        of μ just before each sample (fusion.expected_rate; a unit it informs is added with
        ``GrowthModel.informed()``, as filter_growth takes it). Returns per sample the posterior mean
        (k, 4), covariance (k, 4, 4) (NaN before the unit's chain starts) and flag. ``save``: samples after
        which the unit's whole chain is kept (:attr:`saved`, a row per sample as :meth:`unit_state` gives it,
        NaN elsewhere), so a late sample can go back to it (:meth:`set_unit_state`)."""
        unit_index = np.ascontiguousarray(unit_index, dtype=np.int64)
        times_h = np.ascontiguousarray(times_h, dtype=float)
        values = np.ascontiguousarray(values, dtype=float)
        samples = unit_index.shape[0]
        dilution = (np.zeros(samples) if dilution_fraction is None
                    else np.ascontiguousarray(dilution_fraction, dtype=float))  # fmt: skip
        if not (times_h.shape == values.shape == dilution.shape == (samples,)):
            raise ValueError("unit_index, times_h, values and dilution_fraction must be 1-D and of one length")
        if samples and (unit_index.min() < 0 or unit_index.max() >= self.units):
            raise IndexError(f"unit index out of range (this filter has {self.units} units)")
        if np.any((dilution < 0) | (dilution >= 1)):
            raise ValueError("dilution_fraction must lie in [0, 1): the fraction of culture removed")
        rate_input = (np.zeros(samples) if rate_input is None
                      else np.ascontiguousarray(rate_input, dtype=float))  # fmt: skip
        if rate_input.shape != (samples,) or not np.isfinite(rate_input).all():
            raise ValueError("rate_input must be finite, one per sample")
        dry_weight = (np.full(samples, np.nan) if dry_weight is None
                      else np.ascontiguousarray(dry_weight, dtype=float))  # fmt: skip
        if dry_weight.shape != (samples,) or not dry_weight_sd > 0:
            raise ValueError("dry_weight must be 1-D, one per sample, and dry_weight_sd > 0 g/L")
        flags = np.empty(samples, dtype=np.int64)
        out_mean = np.empty((samples, N_GROWTH_STATE))
        out_cov = np.empty((samples, N_GROWTH_STATE, N_GROWTH_STATE))
        save = np.zeros(samples, dtype=bool) if save is None else np.ascontiguousarray(save, dtype=bool)
        if save.shape != (samples,):
            raise ValueError("save must be 1-D, one per sample")
        width = sum(getattr(self, name)[0].size for name in self.STATE_ARRAYS[1:]) if self.units else 0
        self.saved = np.full((samples if save.any() else 0, width), np.nan)
        _advance(unit_index, times_h, values, dilution, rate_input, dry_weight, dry_weight_sd**2, self.models,
                 self.mean, self.cov, self.clock, self.rejected, self.pre_start, flags, out_mean, out_cov, save,
                 self.saved if save.any() else np.empty((1, width)))  # fmt: skip
        return out_mean, out_cov, flags

    def reset_unit(self, index: int) -> None:
        """Forget unit ``index``'s chain (its factor stays): its next sample starts it afresh, as
        :meth:`add_unit` leaves a new one (to replay its record, e.g. with a dry weight that came late)."""
        if not 0 <= index < self.units:
            raise IndexError(f"unit index out of range (this filter has {self.units} units)")
        self.mean[index] = np.nan
        self.cov[index] = np.nan
        self.clock[index] = 0.0
        self.rejected[index] = 0.0
        self.pre_start[index] = (np.nan, 0.0, 0.0)

    def unit_state(self, index: int) -> list[float]:
        """Unit ``index``'s chain (posterior, clock, rejected run, pre-start) as a flat list, to go back to it
        with :meth:`set_unit_state` (a late sample: fixed-lag re-filtering from a saved point)."""
        return np.concatenate([getattr(self, name)[index].ravel() for name in self.STATE_ARRAYS[1:]]).tolist()

    def set_unit_state(self, index: int, flat: list[float]) -> None:
        """Put unit ``index``'s chain back to what :meth:`unit_state` gave (its factor stays)."""
        flat = np.asarray(flat, dtype=float)
        sizes = [getattr(self, name)[index].size for name in self.STATE_ARRAYS[1:]]
        if flat.size != sum(sizes):
            raise ValueError(f"a unit state has {sum(sizes)} numbers, not {flat.size}")
        for name, part in zip(self.STATE_ARRAYS[1:], np.split(flat, np.cumsum(sizes)[:-1]), strict=True):
            array = getattr(self, name)
            array[index] = part.reshape(array[index].shape)

    def state(self) -> dict[str, np.ndarray]:
        """Everything needed to resume (copies), with the layout's version (:data:`STATE_FORMAT`)."""
        return {name: getattr(self, name).copy() for name in self.STATE_ARRAYS} | {
            "format": np.array([STATE_FORMAT], dtype=float)}

    @classmethod
    def from_state(cls, state: dict[str, np.ndarray]) -> OnlineGrowthFilter:
        """Resume from :meth:`state`; a state of another layout (an older release's) is refused with
        :class:`StateFormatError`, so the caller rebuilds it from the readings instead."""
        saved_format = int(np.asarray(state.get("format", [1]))[0])
        if saved_format != STATE_FORMAT:
            raise StateFormatError(f"filter state has layout {saved_format}; this release reads {STATE_FORMAT}")
        missing = set(cls.STATE_ARRAYS) - set(state)
        if missing:
            raise ValueError(f"filter state lacks {', '.join(sorted(missing))}")
        chains = cls()
        for name in cls.STATE_ARRAYS:
            setattr(chains, name, np.array(state[name], dtype=float))
        return chains


def growth_rate_and_biomass(mean: np.ndarray, cov: np.ndarray) -> dict[str, np.ndarray]:
    """Estimate columns from chain posteriors: biomass, μ and their sd."""
    return {"biomass_g_per_l": mean[..., BIOMASS],
            "biomass_sd": np.sqrt(cov[..., BIOMASS, BIOMASS]),
            "growth_rate_per_h": mean[..., GROWTH_RATE],
            "growth_rate_sd": np.sqrt(cov[..., GROWTH_RATE, GROWTH_RATE])}  # fmt: skip
