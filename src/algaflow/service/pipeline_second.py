"""A unit's second biomass probe in the live pipeline (service.pipeline), as fusion.estimator uses it on a whole
record: its own growth chain (the estimator's alternative), and the causal drift test of the main probe
against it on calibrated readings (fusion.sensor_health.drifting_samples, its state carried from frame to
frame). Where the two disagree, the estimate is the equal mixture of the two chains (fusion.estimator.mixture)
at the second chain's last sample at or before each of the main probe's.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from algaflow.catalog import load_strain
from algaflow.fusion.calibration import BiomassCalibration
from algaflow.fusion.estimator import HOLD_H, SLOPE_TOLERANCE, calibrated_biomass, mixture, sensor_growth_model
from algaflow.fusion.growth_model import GrowthModel
from algaflow.fusion.online import OnlineGrowthFilter, growth_rate_and_biomass
from algaflow.fusion.sensor_health import DRIFT_STATE, DRIFT_WINDOW, drift_state, drifting_samples
from algaflow.fusion.timeline import held_values, last_sample_index

if TYPE_CHECKING:
    from algaflow.service.pipeline_chains import ChainJob

NAN = float("nan")
HOUR_US = 3_600_000_000


def flat_drift(state: tuple[np.ndarray, np.ndarray]) -> list[float]:
    """A drift test's state (fusion.sensor_health.drift_state) as one list of numbers, as a probe carries it."""
    return np.concatenate([part.ravel() for part in state]).tolist()


Columns = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]  # X, var X, μ, var μ at a probe's samples


def probe_estimates(mean: np.ndarray, cov: np.ndarray, curve: BiomassCalibration | None) -> Columns:
    """(X, var X, μ, var μ) from a probe's chain posteriors, var X with its calibration curve's own uncertainty
    (as fusion.estimator adds it)."""
    columns = growth_rate_and_biomass(mean, cov)
    biomass, variance = columns["biomass_g_per_l"], columns["biomass_sd"] ** 2
    if curve is not None:
        variance = variance + curve.biomass_variance(biomass)
    return biomass, variance, columns["growth_rate_per_h"], columns["growth_rate_sd"] ** 2


@dataclass(slots=True)
class SecondProbe:
    """The second probe's chain and what the drift test and the mixture carry between frames (times in h)."""

    sensor: str
    index: int = -1  # its chain in the OnlineGrowthFilter
    first_pass: int = -1  # its first-pass chain where the model informs μ (-1: none)
    calibration: str | None = None  # file name of the stored curve its chain uses
    stuck: list[float] = field(default_factory=lambda: [NAN, 0.0])
    last_rate: float = 0.0
    pending_dilution: list[tuple[int, float]] = field(default_factory=list)
    pending_dry_weight: list[tuple[int, float]] = field(default_factory=list)
    last_time_us: int = -(2**62)  # its last sample's
    last_reading: list[float] = field(default_factory=lambda: [NAN, NAN])  # time, calibrated biomass (g/L)
    last_estimate: list[float] = field(default_factory=lambda: [NAN] * 5)  # time, X, var X, μ, var μ
    drift: list[float] = field(default_factory=lambda: flat_drift(drift_state()))

    @classmethod
    def from_dict(cls, values: dict) -> SecondProbe:
        values = dict(values)
        values["pending_dilution"] = [tuple(p) for p in values["pending_dilution"]]
        values["pending_dry_weight"] = [tuple(p) for p in values["pending_dry_weight"]]
        return cls(**values)

    def drift_arrays(self) -> tuple[np.ndarray, np.ndarray]:
        flat = np.asarray(self.drift, dtype=float)
        return flat[:DRIFT_STATE].copy(), flat[DRIFT_STATE:].reshape(2, DRIFT_WINDOW).copy()


@functools.lru_cache(maxsize=512)
def probe_factor(sensor: str, strain: str, calibration: BiomassCalibration | None) -> GrowthModel:
    """The chain's measurement factor of a probe (fusion.estimator.sensor_growth_model), cached."""
    return sensor_growth_model(sensor, load_strain(strain), calibration=calibration)


def drift_flags(second: SecondProbe, main_times_h: np.ndarray, main_values: np.ndarray, main_factor: GrowthModel,
                other_times_h: np.ndarray, other_values: np.ndarray, other_factor: GrowthModel,
                saves: np.ndarray) -> tuple[np.ndarray, list[list[float] | None]]:  # fmt: skip
    """The drift test at the main probe's new samples (its readings with stuck ones NaN) against the second's
    (same), each calibrated (fusion.estimator.drifting_biomass_samples, streamed): the flags, and the second's
    carried state (last reading, drift test) after each sample of ``saves`` (None elsewhere); ``second`` moves
    on to the last sample."""
    own = calibrated_biomass(main_values, main_factor)[0]
    other = calibrated_biomass(other_values, other_factor)[0]
    kept = np.isfinite(other)
    sample_times = np.r_[second.last_reading[0], other_times_h[kept]]
    readings = np.r_[second.last_reading[1], other[kept]]
    known = np.isfinite(sample_times)
    held = held_values(sample_times[known], readings[known], main_times_h, HOLD_H)
    noise = float(np.hypot(main_factor.od_noise_sd / main_factor.od_per_g_per_l,
                           other_factor.od_noise_sd / other_factor.od_per_g_per_l))  # fmt: skip
    state = second.drift_arrays()
    flags = np.zeros(main_times_h.size, dtype=bool)
    points: list[list[float] | None] = [None] * main_times_h.size
    cuts = (np.flatnonzero(saves) + 1).tolist()
    for start, end in itertools.pairwise([0, *cuts, main_times_h.size]):
        flags[start:end] = drifting_samples(own[start:end], held[start:end], noise, slope_tolerance=SLOPE_TOLERANCE,
                                            state=state)  # fmt: skip
        if end in cuts:
            index = last_sample_index(sample_times[known], main_times_h[end - 1 : end])[0]
            last = [sample_times[known][index], readings[known][index]] if index >= 0 else [NAN, NAN]
            points[end - 1] = [*last, *flat_drift(state)]
    if known.any():
        second.last_reading = [float(sample_times[known][-1]), float(readings[known][-1])]
    second.drift = flat_drift(state)
    return flags, points


def mixed_estimates(second: SecondProbe, flags: np.ndarray, main_times_h: np.ndarray,
                    main: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray], other_times_h: np.ndarray,
                    other: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:  # fmt: skip
    """(X, var X, μ, var μ) at the main probe's samples: where ``flags`` (the probes disagree) the equal mixture
    with the second chain's estimate at its last sample at or before (its new samples' ``other`` or the one
    carried from before); the main chain's ``main`` elsewhere. ``second.last_estimate`` moves on."""
    carried = second.last_estimate[0]
    times = np.r_[carried if np.isfinite(carried) else -np.inf, other_times_h]
    columns = [np.r_[second.last_estimate[1 + k], other[k]] for k in range(4)]
    index = last_sample_index(times, main_times_h)
    seen = (index >= 1) | ((index == 0) & np.isfinite(carried))  # index 0: the carried one, where there is one
    mixed = flags & seen
    result = [x.copy() for x in main]
    at = index[mixed]
    result[0][mixed], result[1][mixed] = mixture(main[0][mixed], main[1][mixed], columns[0][at], columns[1][at])
    result[2][mixed], result[3][mixed] = mixture(main[2][mixed], main[3][mixed], columns[2][at], columns[3][at])
    if other_times_h.size:
        second.last_estimate = [float(other_times_h[-1]), *(float(c[-1]) for c in other)]
    return result[0], result[1], result[2], result[3]


def second_probe(main: ChainJob, other: ChainJob | None, times: np.ndarray,
                 curve_of: Callable[[str | None], BiomassCalibration | None],
                 ) -> tuple[np.ndarray, SecondProbe, np.ndarray, tuple, list]:  # fmt: skip
    """The drift test of the main probe against the unit's second one at the main probe's samples, and the
    second chain's estimates at its own: (flags, the probe, its sample times (h), its (X, var X, μ, var μ), the
    drift test's state at the main probe's kept samples); ``curve_of`` loads a stored calibration curve."""
    track, second = main.track, main.track.second
    main_factor = probe_factor(track.sensor, track.strain, curve_of(track.calibration))
    other_factor = probe_factor(second.sensor, track.strain, curve_of(second.calibration))
    other_times = times[other.rows] / HOUR_US if other is not None else np.empty(0)
    other_values = other.withheld if other is not None else np.empty(0)
    flags, drift_points = drift_flags(second, times[main.rows] / HOUR_US, main.withheld, main_factor, other_times,
                                      other_values, other_factor, main.saves)  # fmt: skip
    if other is not None and other.rows.size:
        second.last_time_us = int(times[other.rows[-1]])
    if other is None:
        return flags, second, other_times, (np.empty(0),) * 4, drift_points
    estimates = probe_estimates(other.mean, other.cov, curve_of(second.calibration))
    return flags, second, other_times, estimates, drift_points


def second_point(chains: OnlineGrowthFilter, main: ChainJob, other: ChainJob | None, before: dict | None,
                 mixing: tuple | None, k: int, times: np.ndarray) -> tuple[list[float], dict | None]:  # fmt: skip
    """The second probe's part of a saved point at the main probe's sample ``k``: its chains (NaN where the
    unit has none) and what it carries (a :class:`SecondProbe` as a dict)."""
    width = 2 * len(chains.unit_state(0)) + 3
    if before is None or mixing is None:
        return [np.nan] * width, None
    at_us = int(times[main.rows[k]])
    probe = dict(before["probe"])
    point = before["point"]
    if other is not None:
        index = int(np.searchsorted(other.rows, main.rows[k], side="right")) - 1
        if index >= 0:
            point = other.points[index]
            _, _, other_times, columns, _ = mixing
            probe["last_time_us"] = int(times[other.rows[index]])
            probe["last_estimate"] = [float(other_times[index]), *(float(c[index]) for c in columns)]
    for name in ("pending_dilution", "pending_dry_weight"):
        probe[name] = [item for item in before["probe"][name] if probe["last_time_us"] < item[0] <= at_us]
    drift = mixing[4][k]
    probe["last_reading"], probe["drift"] = drift[:2], drift[2:]
    probe["last_rate"], probe["stuck"] = point[width - 3], list(point[width - 2 : width])
    return list(point), probe
