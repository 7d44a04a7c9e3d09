"""The live pipeline's growth chains over a batch (service.pipeline), as fusion.estimator runs them on a whole
record: each probe's readings with its stuck ones withheld (fusion.sensor_health.stuck_samples, the run
carried from frame to frame); harvests, dilutions and dry weights each on the probe's first sample at or after
its time; where the reactor model informs μ, a first-pass chain on the probe alone gives the biomass that
shades the tubes and the model's μ increments, from the conditions' running medians (fusion.online_rate), are
the main chain's known input. A probe is the unit's main one (its :class:`UnitTrack`) or its second
(service.pipeline_second.SecondProbe): both carry the same fields.
"""

from __future__ import annotations

import functools
import itertools
from dataclasses import dataclass, field

import numpy as np

from algaflow.catalog import SENSORS, Strain, load_strain
from algaflow.fusion.calibration import BiomassCalibration
from algaflow.fusion.carbon import co2_from_totals
from algaflow.fusion.expected_rate import ReactorGeometry, rate_from_medians, segmented_increments
from algaflow.fusion.growth_model import BIOMASS
from algaflow.fusion.online import OnlineGrowthFilter
from algaflow.fusion.sensor_health import STUCK_RUN, stuck_runs, stuck_tolerance
from algaflow.fusion.timeline import place_on_samples
from algaflow.service.pipeline_second import SecondProbe, mixed_estimates, probe_estimates
from algaflow.service.pipeline_state import HOUR_US, UnitTrack

DRY_WEIGHT_SD = SENSORS["dry_weight"].noise_sd  # g/L
strain_of = functools.cache(load_strain)
Probe = UnitTrack | SecondProbe


@dataclass(slots=True)
class ChainJob:
    """One probe's new samples in a batch (rows of the batch's table, their raw readings, the samples after
    which its state is kept) and, once advanced, its chain's posteriors, the dilution at each sample, its
    readings with the stuck ones withheld, and at each kept sample its state (:func:`probe_point`'s layout)."""

    track: UnitTrack
    probe: Probe
    rows: np.ndarray
    values: np.ndarray
    saves: np.ndarray
    mean: np.ndarray = field(default_factory=lambda: np.empty((0, 4)))
    cov: np.ndarray = field(default_factory=lambda: np.empty((0, 4, 4)))
    dilution: np.ndarray = field(default_factory=lambda: np.empty(0))
    withheld: np.ndarray = field(default_factory=lambda: np.empty(0))
    points: dict[int, list[float]] = field(default_factory=dict)


def place_pending(pending: list[tuple[int, float]],
                  sample_times_us: np.ndarray) -> tuple[np.ndarray, np.ndarray, list[tuple[int, float]]]:  # fmt: skip
    """Each pending (time, value) on the first sample at or after its time (fusion.timeline.place_on_samples):
    the samples' indices and the values, in the pending order, and those after the last sample, which stay
    pending."""
    times = np.array([at for at, _ in pending], dtype=np.int64)
    values = np.array([value for _, value in pending], dtype=float)
    index, placed = place_on_samples(times, sample_times_us)
    return index[placed], values[placed], [item for item, now in zip(pending, placed, strict=True) if not now]


def dilutions(probe: Probe, sample_times_us: np.ndarray) -> np.ndarray:
    """Per sample, 1 − Π(1 − f) of the pending dilutions that fall on it: each at the first sample at or after
    its time (then no longer pending); those after the last sample stay pending."""
    if not probe.pending_dilution:
        return np.zeros(sample_times_us.size)
    index, fractions, probe.pending_dilution = place_pending(probe.pending_dilution, sample_times_us)
    survival = np.ones(sample_times_us.size)
    np.multiply.at(survival, index, 1.0 - fractions)
    return 1.0 - survival


def dry_weights(probe: Probe, sample_times_us: np.ndarray) -> np.ndarray:
    """Per sample, the pending dry weight that falls on it (NaN where none; the last recorded of several),
    placed as dilutions are."""
    if not probe.pending_dry_weight:
        return np.full(sample_times_us.size, np.nan)
    index, grams, probe.pending_dry_weight = place_pending(probe.pending_dry_weight, sample_times_us)
    placed = np.full(sample_times_us.size, np.nan)
    for k, value in zip(index.tolist(), grams.tolist(), strict=True):
        placed[k] = value
    return placed


def probe_point(chains: OnlineGrowthFilter, probe: Probe) -> list[float]:
    """A probe's state now: its chain, its first-pass chain (NaN where none), its last μ_model, its stuck run."""
    width = len(chains.unit_state(probe.index))
    first_pass = chains.unit_state(probe.first_pass) if probe.first_pass >= 0 else [np.nan] * width
    return [*chains.unit_state(probe.index), *first_pass, probe.last_rate, *probe.stuck]


def set_probe_point(chains: OnlineGrowthFilter, probe: Probe, point: list[float]) -> None:
    """Put a probe back to :func:`probe_point`'s state."""
    point = np.asarray(point, dtype=float)
    width = len(chains.unit_state(probe.index))
    chains.set_unit_state(probe.index, point[:width])
    if probe.first_pass >= 0:
        chains.set_unit_state(probe.first_pass, point[width : 2 * width])
    probe.last_rate = float(point[2 * width])
    probe.stuck = point[2 * width + 1 : 2 * width + 3].tolist()


def advance_chains(chains: OnlineGrowthFilter, jobs: list[ChainJob], times_us: np.ndarray, medians: np.ndarray,
                   reactor: ReactorGeometry) -> None:  # fmt: skip
    """Advance every job's chain over its samples (module doc), filling the jobs' results; ``medians``: the
    model-input sensors' running medians at the jobs' rows, in the jobs' order."""
    bounds = np.cumsum([0, *(job.rows.size for job in jobs)])
    slices = [slice(int(a), int(b)) for a, b in itertools.pairwise(bounds.tolist())]
    rows = np.concatenate([job.rows for job in jobs])
    values = np.concatenate([job.values for job in jobs]).astype(float)
    saves = np.concatenate([job.saves for job in jobs])
    hours = times_us[rows] / HOUR_US
    samples = rows.size
    dilution, dry_weight = np.empty(samples), np.empty(samples)
    chain, first_pass = np.empty(samples, dtype=np.int64), np.empty(samples, dtype=np.int64)
    for job, sampled in zip(jobs, slices, strict=True):
        probe, sample_times = job.probe, times_us[job.rows]
        dilution[sampled] = dilutions(probe, sample_times)
        dry_weight[sampled] = dry_weights(probe, sample_times)
        chain[sampled], first_pass[sampled] = probe.index, probe.first_pass
    # Each probe's stuck readings withheld (fusion.sensor_health.stuck_runs, its run carried in probe.stuck), as
    # the offline estimator withholds them, every probe of the batch at once.
    starts, ends = bounds[:-1].astype(np.int64), bounds[1:].astype(np.int64)
    stuck = np.array([job.probe.stuck for job in jobs], dtype=float).reshape(len(jobs), 2)
    flags, stuck_points = np.zeros(samples, dtype=bool), np.full((samples, 2), np.nan)
    specs = [SENSORS[job.probe.sensor] for job in jobs]
    tolerance = np.array([stuck_tolerance(spec.noise_sd, spec.resolution) for spec in specs], dtype=float)
    stuck_runs(values, starts, ends, tolerance, STUCK_RUN, stuck, flags, saves, stuck_points)
    values[flags] = np.nan
    for job, state in zip(jobs, stuck.tolist(), strict=True):
        job.probe.stuck = state
    rate_input, rate_points = np.zeros(samples), np.full(samples, np.nan)
    last = np.array([job.probe.last_rate for job in jobs], dtype=float)
    rate_points[:] = last.repeat(np.diff(bounds))
    informed = first_pass >= 0
    width = len(chains.unit_state(0))
    first_pass_points = np.full((samples, width), np.nan)
    if informed.any():
        first_mean, _, _ = chains.update(first_pass[informed], hours[informed], values[informed], dilution[informed],
                                         dry_weight[informed], DRY_WEIGHT_SD, saves[informed])  # fmt: skip
        if saves[informed].any():
            first_pass_points[informed] = chains.saved
        biomass = np.full(samples, np.nan)
        biomass[informed] = first_mean[:, BIOMASS]
        rate = np.full(samples, np.nan)  # NaN: no increment (an uninformed probe's samples)
        strains = np.array([job.track.strain for job in jobs], dtype=object).repeat(np.diff(bounds))
        for strain in set(strains[informed].tolist()):  # μ_model for every sample of a strain at once
            mine = informed & (strains == strain)
            rate[mine] = rate_from_medians(medians[mine], biomass[mine], strain_of(strain), reactor)
        segmented_increments(rate, starts, ends, last, rate_input, saves, rate_points)
        for job, rate_now in zip(jobs, last.tolist(), strict=True):
            job.probe.last_rate = rate_now
    mean, cov, _ = chains.update(chain, hours, values, dilution, dry_weight, DRY_WEIGHT_SD, saves, rate_input)
    for job, sampled in zip(jobs, slices, strict=True):
        job.mean, job.cov, job.dilution, job.withheld = mean[sampled], cov[sampled], dilution[sampled], values[sampled]
        job.points = {j: [*chains.saved[sampled.start + j], *first_pass_points[sampled.start + j],
                          rate_points[sampled.start + j], *stuck_points[sampled.start + j]]
                      for j in np.flatnonzero(saves[sampled]).tolist()}  # fmt: skip


def estimate_columns(track: UnitTrack, times_us: np.ndarray, mean: np.ndarray, cov: np.ndarray, dilution: np.ndarray,
                     strain: Strain, curve: BiomassCalibration | None, mixing: tuple | None = None,
                     ) -> dict[str, np.ndarray] | None:  # fmt: skip
    """One unit's estimate columns (``ESTIMATE_COLUMNS`` but the advice) at its samples since the chain
    started, and the harvested totals at each (``harvested``, ``harvested_variance``: for the saved points);
    the running totals (initial and harvested biomass, last biomass) move on to the last sample. ``mixing``
    (service.pipeline_second.second_probe): where the probes disagree, the equal mixture with the second
    probe's chain."""
    biomass, variance, rate, rate_variance = probe_estimates(mean, cov, curve)
    if mixing is not None:
        flags, second, other_times, other, _ = mixing
        biomass, variance, rate, rate_variance = mixed_estimates(second, flags, times_us / HOUR_US,
                                                                 (biomass, variance, rate, rate_variance),
                                                                 other_times, other)  # fmt: skip
    started = ~np.isnan(mean[:, 0])
    if not started.any():
        return None
    biomass, biomass_sd, dilution = biomass[started], np.sqrt(variance[started]), dilution[started]
    columns = {"growth_rate_per_h": rate[started], "growth_rate_sd": np.sqrt(rate_variance[started])}
    if track.initial is None:
        track.initial = (float(biomass[0]), float(biomass_sd[0]))
    before, before_sd = track.last_biomass if track.last_biomass is not None else (np.nan, np.nan)
    before = np.r_[before, biomass[:-1]]  # X(t_h⁻): the estimate at the previous sample
    before_sd = np.r_[before_sd, biomass_sd[:-1]]
    removed = (dilution > 0.0) & ~np.isnan(before)
    harvested = track.harvested + np.cumsum(np.where(removed, dilution * before, 0.0))
    harvested_variance = track.harvested_variance + np.cumsum(np.where(removed, (dilution * before_sd) ** 2, 0.0))
    track.harvested, track.harvested_variance = float(harvested[-1]), float(harvested_variance[-1])
    track.last_biomass = (float(biomass[-1]), float(biomass_sd[-1]))
    co2, co2_sd = co2_from_totals(biomass, biomass_sd, np.array(track.initial[0]), np.array(track.initial[1]),
                                  harvested, harvested_variance, track.volume_l,
                                  strain.carbon_fraction)  # fmt: skip
    rate, rate_sd = columns["growth_rate_per_h"], columns["growth_rate_sd"]
    return {"time_us": times_us[started], "biomass_g_per_l": biomass, "biomass_sd": biomass_sd,
            "growth_rate_per_h": rate, "growth_rate_sd": rate_sd, "co2_captured_g": co2,
            "co2_captured_sd": co2_sd, "harvested": harvested,
            "harvested_variance": harvested_variance}  # fmt: skip
