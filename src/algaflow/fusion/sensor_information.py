"""What each sensor of a unit contributes, over a time window: information, redundancy, disagreement.

Information: the growth chain run on each biomass sensor s alone gives posterior variances of ln X and μ;
what a sensor is worth is what the estimate loses without it,

    loss_s = sd(μ | sensors without s) / sd(μ | all sensors) − 1     (and the same for ln X)

with "all sensors" the estimator as `algaflow fuse` runs it (the first biomass sensor with data, in
``BIOMASS_SENSORS`` order, is used); the other biomass sensors are redundant to it.
Sensors of other quantities do not enter the biomass chain; they are reported with zero information.

Disagreement: a biomass sensor drifts against the rest when the difference of its calibrated reading to
each other one moves, within the window, by more than both its noise and a calibration slope error of a
few percent (the causal drift check `algaflow fuse` runs, fusion.sensor_health.drifting_samples; with
two sensors both are flagged: either may be wrong). A biomass sensor that alone moves faster than any
culture can grow or be lost (fusion.growth_limit) is "outgrowing": its readings are set aside until it is
recalibrated. The two temperature probes (tank and tube; the loop mixes fast, so they read one
temperature) disagree when their median difference over the window exceeds 5 √2 noise sd. pH and DO
legitimately differ between the dark tank and the lit tube; in the dark (``par_surface`` at most
10 µmol m⁻² s⁻¹, or the lamp off, for an hour at least) the loop is one water and the two pH probes read
one pH, so they are watched against each other then, causally, with the biomass pairs' drift check (a
trailing median and Page's CUSUM against the first dark hour's difference, beyond the 0.02 pH two
calibrated electrodes may come to differ by; both are flagged, either may be the one drifting). DO is not
compared: the tank's sparger strips what the tubes' respiration leaves.
Stuck runs, spikes, level jumps and saturation are counted by fusion.sensor_health for every sensor; gaps
as the share of the samples missing that the sensor's own sampling period promises
(fusion.sensor_health.sampling_period_h).
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations

import numpy as np

from algaflow.catalog import SENSORS, Strain
from algaflow.fusion.calibration import BiomassCalibration
from algaflow.fusion.estimator import (
    BIOMASS_SENSORS,
    HOLD_H,
    UnitEstimates,
    drifting_biomass_samples,
    estimate_unit,
)
from algaflow.fusion.sensor_health import (
    drifting_samples,
    jump_samples,
    sampling_period_h,
    saturated_samples,
    spike_samples,
    stuck_samples,
)
from algaflow.fusion.timeline import held_values, last_sample_index

SET_ASIDE = ("rejected_outlier", "downweighted", "invalid_value", "level_jump", "outgrowing", "suspended")
PAIR_DISAGREE_SD = 5.0
PAIRS = (("temp_tank", "temp_tube"),)
DARK_PAIRS = (("ph_tank", "ph_tube"),)  # one water in the dark: no photosynthesis pulls the tube's pH up
DARK_PAR_UMOL = 10.0  # incident PAR (µmol m⁻² s⁻¹) at or below which the lamp or the sun is off
DARK_SETTLE_H = 1.0  # after the light goes off, the tube's carbonate system re-equilibrates with the tank's
PH_CALIBRATION_ACCURACY = 0.02  # pH: two electrodes after a two-point calibration agree this well, no better


@dataclass(slots=True)
class SensorReportRow:
    """One sensor of one unit over the window."""

    sensor: str
    samples: int
    missing_fraction: float  # of the samples its own sampling period promises over the window
    stuck_fraction: float
    spike_fraction: float  # Hampel spikes among its samples (fusion.sensor_health)
    jumps: int  # level jumps
    saturated_fraction: float  # at its range or pinned at the record's extreme
    flagged_fraction: float  # samples the chain rejected, downweighted or found invalid (biomass sensors)
    growth_rate_sd_alone: float  # median sd of μ from this sensor alone (1/h); NaN if not a biomass sensor
    biomass_loss_if_removed: float  # relative growth of sd(ln X) without it
    growth_rate_loss_if_removed: float
    status: str  # used, redundant, disagrees, outgrowing, stuck, silent, not in the biomass chain


def sensor_report(times_h: np.ndarray, readings: dict[str, np.ndarray], harvests: list[tuple[float, float]],
                  strain: Strain, volume_l: float = 80.0,
                  calibrations: dict[str, BiomassCalibration] | None = None,
                  recalibrations_h: dict[str, list[float]] | None = None) -> list[SensorReportRow]:  # fmt: skip
    """Rank a unit's sensors by what the biomass and growth-rate estimate would lose without them (the biomass
    chain's sensors first, then the others by name). ``recalibrations_h``: by sensor, when it was re-zeroed
    (the end of a suspension, fusion.estimator.estimate_unit)."""
    times_h = np.asarray(times_h, dtype=float)
    span_h = float(np.nanmax(times_h) - np.nanmin(times_h)) if times_h.size else 0.0
    present = [s for s in BIOMASS_SENSORS if s in readings and np.isfinite(readings[s]).any()]
    alone = {s: estimate_unit(times_h, readings, harvests, strain, volume_l, calibrations=calibrations,
                              candidates=(s,), recalibrations_h=recalibrations_h) for s in present}  # fmt: skip
    full = _uncertainty(alone[present[0]]) if present else (np.nan, np.nan)
    rows = []
    for name, values in readings.items():
        values = np.asarray(values, dtype=float)
        spec = SENSORS[name]
        samples = int(np.isfinite(values).sum())
        expected = max(span_h / sampling_period_h(times_h, values, spec.period_s / 3600.0) + 1.0, 1.0)
        stuck = stuck_samples(values[np.isfinite(values)], spec.noise_sd, spec.resolution)
        stuck_fraction = float(stuck.mean()) if stuck is not None and stuck.size else 0.0
        present_values = values[np.isfinite(values)]
        glitches = (float(spike_samples(present_values, spec.noise_sd).mean()) if samples else 0.0,
                    int(jump_samples(present_values, spec.noise_sd).sum()),
                    float(saturated_samples(present_values, *spec.range, spec.resolution).mean()) if samples else 0.0)
        row = SensorReportRow(name, samples, float(max(0.0, 1.0 - samples / expected)), stuck_fraction, *glitches,
                              0.0, np.nan, 0.0, 0.0, "not in the biomass chain")  # fmt: skip
        if name in alone:
            estimates = alone[name]
            row.flagged_fraction = float(np.isin(estimates.flags, SET_ASIDE).mean())
            row.growth_rate_sd_alone = _uncertainty(estimates)[1]
            rest = [s for s in present if s != name]
            without = _uncertainty(alone[rest[0]]) if rest else (np.inf, np.inf)
            row.biomass_loss_if_removed = without[0] / full[0] - 1.0
            row.growth_rate_loss_if_removed = without[1] / full[1] - 1.0
            row.status = "used" if name == present[0] else "redundant"
        if name in alone and (alone[name].drifting == name).any():
            row.status = "outgrowing"
        if samples == 0:
            row.status = "silent"
        elif stuck_fraction > 0.5:
            row.status = "stuck"
        rows.append(row)
    by_name = {row.sensor: row for row in rows}
    # A probe that outgrew any culture explains its disagreement with the others: it is not held against them.
    sound = [s for s in present if by_name[s].status != "outgrowing"]
    for name in _disagreeing_biomass(times_h, readings, sound, strain, calibrations or {}):
        by_name[name].status = "disagrees"
    for pair in PAIRS:
        if all(s in readings for s in pair) and _pair_disagrees(times_h, readings[pair[0]], readings[pair[1]], pair[0]):
            for name in pair:
                by_name[name].status = "disagrees"
    dark = dark_samples(times_h, readings)
    for pair in DARK_PAIRS:
        if dark is not None and all(s in readings for s in pair) and drifting_in_the_dark(times_h, readings, *pair,
                                                                                          dark).any():
            for name in pair:
                by_name[name].status = "disagrees"
    # the biomass chain's sensors first (by what μ, then X, would lose without them: a redundant one can lose
    # nothing, or less than nothing where another sensor alone is better), then the others by name
    return sorted(rows, key=lambda r: (r.sensor not in alone, -r.growth_rate_loss_if_removed,
                                       -r.biomass_loss_if_removed, r.sensor))


def _uncertainty(estimates: UnitEstimates) -> tuple[float, float]:
    """Median posterior relative sd of X (the sd of ln X to first order) and sd of μ over the window's settled
    part (after its first tenth)."""
    settled = slice(estimates.times_h.size // 10, None)
    relative = estimates.biomass_sd[settled] / estimates.biomass_g_per_l[settled]
    return float(np.median(relative)), float(np.median(estimates.growth_rate_sd[settled]))


def _disagreeing_biomass(times_h: np.ndarray, readings: dict[str, np.ndarray], sensors: list[str],
                         strain: Strain, calibrations: dict[str, BiomassCalibration]) -> list[str]:  # fmt: skip
    """Biomass sensors that drift against every other one within the window (the causal check of
    fusion.estimator.drifting_biomass_samples, pair by pair); with two sensors both are flagged: either
    may be the wrong one."""
    drifts = {frozenset(pair): bool(drifting_biomass_samples(times_h, readings, *pair, strain, calibrations).any())
              for pair in combinations(sensors, 2)}  # fmt: skip
    return [s for s in sensors if len(sensors) > 1 and all(drifts[frozenset((s, o))] for o in sensors if o != s)]


def dark_samples(times_h: np.ndarray, readings: dict[str, np.ndarray]) -> np.ndarray | None:
    """True at the times the culture has been dark for ``DARK_SETTLE_H`` at least: no ``par_surface`` sample
    above ``DARK_PAR_UMOL`` (or, without it, no ``led_power`` above 0) since then, nor the record's start,
    and one at or below it within the last ``HOLD_H``. None where the unit reads neither."""
    light_sensors = [(np.asarray(readings[name], dtype=float), threshold)
                     for name, threshold in (("par_surface", DARK_PAR_UMOL), ("led_power", 0.0))
                     if name in readings and np.isfinite(readings[name]).any()]  # fmt: skip
    if not light_sensors:
        return None
    values, threshold = light_sensors[0]
    sampled = np.isfinite(values)
    sample_times, light = times_h[sampled], values[sampled] > threshold
    # A record that starts dark has been dark since its first sample, as far as it knows.
    lit_times = np.r_[sample_times[0], sample_times[light]]
    since_light = times_h - lit_times[np.maximum(last_sample_index(lit_times, times_h), 0)]
    fresh = np.isfinite(held_values(sample_times, values[sampled], times_h, HOLD_H))
    return fresh & (since_light >= DARK_SETTLE_H)


def drifting_in_the_dark(times_h: np.ndarray, readings: dict[str, np.ndarray], first: str, second: str,
                         dark: np.ndarray) -> np.ndarray:  # fmt: skip
    """Causal drift flags (fusion.sensor_health.drifting_samples) of ``first`` against ``second`` on the dark
    samples only, at ``first``'s samples (the other's last sample held for ``HOLD_H``): in the dark, tank and
    tube hold one well-mixed water and read one pH; in the light they differ by the CO2 the tubes take up.
    A change within the electrodes' calibration accuracy is no drift."""
    own = np.asarray(readings[first], dtype=float)
    other = np.asarray(readings[second], dtype=float)
    sampled, other_sampled = np.isfinite(own), np.isfinite(other)
    held = held_values(times_h[other_sampled], other[other_sampled], times_h[sampled], HOLD_H)
    held = np.where(dark[sampled], held, np.nan)
    flags = np.zeros(times_h.size, dtype=bool)
    noise = float(np.hypot(SENSORS[first].noise_sd, SENSORS[second].noise_sd))
    flags[sampled] = drifting_samples(own[sampled], held, noise, tolerance=PH_CALIBRATION_ACCURACY)
    return flags


def _pair_disagrees(times_h: np.ndarray, first: np.ndarray, second: np.ndarray, name: str) -> bool:
    """Median of first − second (second interpolated to first's samples) beyond 5 √2 noise sd."""
    first_kept, second_kept = np.isfinite(first), np.isfinite(second)
    if first_kept.sum() < 10 or second_kept.sum() < 10:
        return False
    other = np.interp(times_h[first_kept], times_h[second_kept], np.asarray(second)[second_kept])
    difference = np.median(np.asarray(first)[first_kept] - other)
    return bool(abs(difference) > PAIR_DISAGREE_SD * np.sqrt(2.0) * max(SENSORS[name].noise_sd, 1e-9))
