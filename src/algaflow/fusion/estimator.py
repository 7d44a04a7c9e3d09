"""The reactor estimator from a unit's biomass sensor: sensor choice, its factor's noise and calibration,
the growth chain (fusion.growth), CO2 from biomass (fusion.carbon) and, where the unit has the gas
analysers and the air flow, from the gas balance (fusion.gas_balance), with the two routes' agreement.

Where the unit reads its incident light (``par_surface``), the reactor model's expected growth rate from
the light, temperature, pH, DO and nitrate sensors informs μ (fusion.expected_rate): a first, OD-only
causal pass gives the biomass that shades the tubes, the model's rate changes are the chain's known input.

A biomass sensor reads s = a X + b + v (catalog noise sd σ, strain slope a), so any of them drives the
same chain with (a, σ) from the strain and the catalog; the first one a unit has, in ``BIOMASS_SENSORS``
order, is used.

The chain's probe is watched against the culture's physiology, causally (fusion.growth_limit): a probe
that rises faster than the strain can grow, or falls faster than a culture can be lost, drifts. From the
sample the test fires at, the estimate is the chain that never took the ramp the test saw: the probe is
suspended (its readings withheld, the chain predicting through, its band widening) until a ``calibration``
event re-zeroes it. A slower drift is out of this test's reach; it shows against a second sensor or dry
weights.

Where the unit has a second biomass sensor, the two are watched against each other, causally
(fusion.sensor_health.drifting_samples on their calibrated readings X̂ = h⁻¹(s), h the calibration
curve). While they disagree, one of them drifts and the data cannot say which: the estimate is the two hypotheses
("the chain's sensor is right", "the other one is") with equal weight, each the growth chain on that
sensor, collapsed to one Gaussian by moment matching (as an interacting-multiple-model filter does):

    m = (m₁ + m₂)/2,   P = (P₁ + P₂)/2 + (m₁ − m₂)² / 4      for X and for μ

so the band spans both sensors' stories until they agree again. Where the chain's probe is suspended
(it outgrew any culture), it is the wrong one, and the estimate is the other sensor's chain alone.

This is the estimator on a whole record (``algaflow fuse``). The live pipeline runs the same estimator frame by
frame (service.pipeline_chains and service.pipeline_second on the same kernels: the growth step, the stuck
run, the condition medians, the drift test) and gives the same estimates (tests/service/test_estimate_paths),
except the growth-limit suspension, which it does not stream yet.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace

import numpy as np

from algaflow.catalog import SENSORS, Strain, sensors_with_role
from algaflow.catalog.events import EVENTS
from algaflow.fusion.calibration import BiomassCalibration
from algaflow.fusion.carbon import co2_from_biomass
from algaflow.fusion.expected_rate import (
    ReactorGeometry,
    Samples,
    condition_sources,
    model_rate_input,
    unit_model_readings,
)
from algaflow.fusion.gas_balance import agreement, co2_from_gas_balance
from algaflow.fusion.growth import GrowthEstimates, dilution_before_samples, filter_growth, smooth_growth
from algaflow.fusion.growth_limit import GROWTH_MARGIN, outgrowing_onsets
from algaflow.fusion.growth_model import BIOMASS, FLAG_NAMES, GROWTH_RATE, GrowthModel
from algaflow.fusion.growth_window import window_error_terms
from algaflow.fusion.sensor_health import drifting_samples, stuck_samples
from algaflow.fusion.timeline import held_values, last_sample_index, place_on_samples

BIOMASS_SENSORS = sensors_with_role("biomass")  # in the catalog's order of preference
SLOPE_TOLERANCE = 0.05  # relative calibration slope error allowed between two biomass sensors
HOLD_H = 0.25  # the other sensor's last sample counts for this long (h)


def sensor_growth_model(sensor: str, strain: Strain, base: GrowthModel | None = None,
                        calibration: BiomassCalibration | None = None) -> GrowthModel:  # fmt: skip
    """The growth chain's measurement factor for ``sensor``: the catalog's noise and range, the strain's
    slope (or a fitted ``calibration`` curve: its c1, c2, and c0 as the baseline's prior mean, whose
    variance joins the baseline prior); the baseline's prior sd is the catalog's offset sd of the probe
    (the offset a calibration leaves); drift priors scaled from OD units to the sensor's (same fraction of
    its noise)."""
    base = base or GrowthModel()
    spec = SENSORS[sensor]
    scale = spec.noise_sd / base.od_noise_sd
    baseline_sd = spec.offset_sd
    slope, curvature, intercept = strain.biomass_slope(sensor), 0.0, 0.0
    if calibration is not None:
        if calibration.sensor != sensor:
            raise ValueError(f"calibration is for {calibration.sensor}, not {sensor}")
        slope, curvature, intercept = calibration.slope, calibration.curvature, calibration.intercept
        baseline_sd = float(np.hypot(baseline_sd, np.sqrt(calibration.covariance[0][0])))
    return replace(base, od_per_g_per_l=slope, od_quadratic=curvature, od_intercept=intercept,
                   od_noise_sd=spec.noise_sd, initial_baseline_sd=baseline_sd,
                   initial_drift_sd=base.initial_drift_sd * scale,
                   baseline_diffusion=base.baseline_diffusion * scale**2,
                   drift_diffusion=base.drift_diffusion * scale**2,
                   od_plausible_min=spec.range[0] - 10 * spec.noise_sd, od_plausible_max=spec.range[1])  # fmt: skip


def filter_informed_growth(times_h: np.ndarray, values: np.ndarray, dilution: np.ndarray, model: GrowthModel,
                           model_readings: dict[str, Samples], strain: Strain, reactor: ReactorGeometry,
                           keep_priors: bool = True, dry_weight: np.ndarray | None = None,
                           ) -> tuple[GrowthEstimates, tuple[str, ...]]:  # fmt: skip
    """One unit's growth chain on its biomass sensor (``values`` at ``times_h``), μ informed by the reactor
    model where ``model_readings`` (sensor → (times, values)) include ``par_surface``: a first OD-only causal
    pass gives the biomass that shades the tubes, the model's rate changes at it are the known input.
    ``dry_weight``: manual samples at ``times_h`` (NaN where none), factors on X (fusion.growth).
    Returns the estimates and the sensors that informed μ (empty: OD alone)."""
    sources = condition_sources(model_readings)
    dry_weight_sd = SENSORS["dry_weight"].noise_sd
    if "par" not in sources:
        return filter_growth(times_h, values, dilution, model, keep_priors=keep_priors, dry_weight=dry_weight,
                             dry_weight_sd=dry_weight_sd), ()
    first_pass = filter_growth(times_h, values, dilution, model, keep_priors=False, dry_weight=dry_weight,
                               dry_weight_sd=dry_weight_sd)  # fmt: skip
    rate_input = model_rate_input(times_h, model_readings, first_pass.biomass_g_per_l[0], strain, reactor)
    estimates = filter_growth(times_h, values, dilution, model, keep_priors=keep_priors, rate_input=rate_input,
                              dry_weight=dry_weight, dry_weight_sd=dry_weight_sd)  # fmt: skip
    return estimates, tuple(sources.values())


def dry_weight_at_samples(times_h: np.ndarray, readings: dict[str, np.ndarray],
                          sample_times_h: np.ndarray) -> np.ndarray:  # fmt: skip
    """The unit's manual dry weights (``readings["dry_weight"]`` at ``times_h``), each placed on the first chain
    sample at or after it (fusion.timeline.place_on_samples): NaN elsewhere; of several on one sample the last;
    one after the last sample is left out."""
    result = np.full(np.size(sample_times_h), np.nan)
    values = np.asarray(readings.get("dry_weight", np.full(np.size(times_h), np.nan)), dtype=float)
    taken = np.isfinite(values)
    index, placed = place_on_samples(np.asarray(times_h, dtype=float)[taken], sample_times_h)
    result[index[placed]] = values[taken][placed]
    return result


@dataclass(slots=True)
class UnitEstimates:
    """Columns of the estimates contract (DESIGN.md §5) for one unit, at its biomass sensor's samples."""

    sensor: str
    times_h: np.ndarray
    biomass_g_per_l: np.ndarray
    biomass_sd: np.ndarray
    growth_rate_per_h: np.ndarray
    growth_rate_sd: np.ndarray
    co2_captured_g: np.ndarray
    co2_captured_sd: np.ndarray
    # names from fusion.growth.FLAG_NAMES, "stuck" (fusion.sensor_health), "outgrowing" or "suspended"
    flags: np.ndarray
    co2_gas_balance_g: np.ndarray  # NaN where the unit has no gas balance (or before its first exhaust sample)
    co2_gas_balance_sd: np.ndarray
    co2_routes_z: np.ndarray  # (gas − biomass) / combined sd: |z| < 2, the routes agree
    model_sensors: tuple[str, ...] = ()  # sensors whose readings informed μ through the reactor model
    # per sample: "", the biomass sensors found disagreeing ("a,b") or the one outgrowing its culture ("a")
    drifting: np.ndarray | None = None
    # fusion.growth_window's terms at each sample (σ_ℓ, q_b/h'², P_dd/h'²): NaN where the estimate is a mixture
    window_terms: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None


def estimate_unit(times_h: np.ndarray, readings: dict[str, np.ndarray], harvests: list[tuple[float, float]],
                  strain: Strain, volume_l: float, smooth: bool = False,
                  calibrations: dict[str, BiomassCalibration] | None = None,
                  candidates: tuple[str, ...] = BIOMASS_SENSORS,
                  reactor: ReactorGeometry | None = None,
                  recalibrations_h: dict[str, list[float]] | None = None) -> UnitEstimates:  # fmt: skip
    """``readings``: sensor → values at ``times_h`` (NaN where that sensor has no sample).
    ``harvests``: (time_h, fraction) pairs; each is applied at the first sample at or after it.
    ``calibrations``: fitted curves by sensor, used instead of the strain's slope; the uncertainty of
    their slope and curvature, common to all samples, is added to var X at the output.
    ``candidates``: the biomass sensors it may use, in order of preference (the first with data is used).
    ``reactor``: geometry for the model's light response (default: the lab tubular loop); the model informs μ
    only where the unit has ``par_surface``.
    ``recalibrations_h``: by sensor, the times it was recalibrated (re-zeroed); a probe found moving faster
    than its culture can (fusion.growth_limit) is set aside from the ramp's start until the next one."""
    calibrations = calibrations or {}
    present = [s for s in candidates if s in readings and np.isfinite(readings[s]).any()]
    if not present:
        raise ValueError(f"no biomass sensor with data; fusing needs one of {', '.join(candidates)}")
    sensor, others = present[0], present[1:]
    times_h = np.asarray(times_h, dtype=float)
    values = np.asarray(readings[sensor], dtype=float)
    sampled = ~np.isnan(values)
    times, values = times_h[sampled], values[sampled]
    spec = SENSORS[sensor]
    stuck = stuck_samples(values, spec.noise_sd, spec.resolution)
    if stuck is not None:
        values = np.where(stuck, np.nan, values)  # a stuck reading says nothing: the chain predicts through it
    dilution = dilution_before_samples(times, [t for t, _ in harvests], [f for _, f in harvests])
    calibration = calibrations.get(sensor)
    model = sensor_growth_model(sensor, strain, calibration=calibration)
    model_readings = unit_model_readings(times_h, readings)
    dry_weight = dry_weight_at_samples(times_h, readings, times)
    recalibrations = sorted((recalibrations_h or {}).get(sensor, []))
    onsets = outgrowing_probe_onsets(times, values, model, strain, [t for t, _ in harvests], recalibrations)
    suspensions = probe_suspensions(onsets, times, recalibrations)

    def chain(withheld: np.ndarray) -> tuple[GrowthEstimates, tuple[str, ...]]:
        return filter_informed_growth(times, np.where(withheld, np.nan, values), dilution, model, model_readings,
                                      strain, reactor or ReactorGeometry(), keep_priors=smooth,
                                      dry_weight=dry_weight)  # fmt: skip

    withheld = np.zeros(times.size, dtype=bool)
    if smooth:  # offline: every suspension is known, one chain withholds them all
        for _, first, end in suspensions:
            withheld[first + 1 : end] = True
        filtered, informed_by = chain(withheld)
        smoothed = smooth_growth(filtered)
        mean, cov, chain_flags = smoothed.mean[0], smoothed.cov[0], filtered.flags[0]
    else:
        filtered, informed_by = chain(withheld)
        mean, cov, chain_flags = filtered.mean[0], filtered.cov[0], filtered.flags[0]
        for detected, first, end in suspensions:
            # From the sample the test fired at on, the chain is the one that never took the ramp it saw nor
            # anything after it until the probe is recalibrated: causal, it knows at `detected` what it withholds.
            withheld[first + 1 : end] = True
            later, _ = chain(withheld)
            mean, cov, chain_flags = (np.concatenate([x[:detected], y[0, detected:]]) for x, y in
                                      ((mean, later.mean), (cov, later.cov), (chain_flags, later.flags)))
    biomass, biomass_variance = mean[:, BIOMASS], cov[:, BIOMASS, BIOMASS]
    window_terms = window_error_terms(mean, cov, model.as_array())
    if calibration is not None:
        biomass_variance = biomass_variance + calibration.biomass_variance(biomass)
    rate, rate_variance = mean[:, GROWTH_RATE], cov[:, GROWTH_RATE, GROWTH_RATE]
    drifting = np.full(times.size, "", dtype=object)
    for detected, _, end in suspensions:
        drifting[detected:end] = sensor
    if others:
        other = others[0]
        disagree = drifting_biomass_samples(times_h, readings, sensor, other, strain, calibrations)
        suspended = drifting == sensor
        if disagree.any() or suspended.any():
            drifting[disagree & ~suspended] = f"{sensor},{other}"
            alternative = estimate_unit(times_h, readings, harvests, strain, volume_l, smooth, calibrations,
                                        candidates=(other,), reactor=reactor,
                                        recalibrations_h=recalibrations_h)  # fmt: skip
            biomass, biomass_variance = (x.copy() for x in (biomass, biomass_variance))
            rate, rate_variance = (x.copy() for x in (rate, rate_variance))
            # Where the two disagree, either may be wrong: the equal mixture. Where the chain's probe has
            # outgrown any culture, it is the wrong one: the other sensor's chain alone.
            for terms in window_terms:  # a mixture's error is no single chain's: the conservative σ_r there
                terms[disagree | suspended] = np.nan
            for samples, weight in ((disagree & ~suspended, 0.5), (suspended, 1.0)):
                index = last_sample_index(alternative.times_h, times[samples])
                seen = index >= 0
                at, index = np.flatnonzero(samples)[seen], index[seen]
                biomass[at], biomass_variance[at] = mixture(biomass[at], biomass_variance[at],
                                                            alternative.biomass_g_per_l[index],
                                                            alternative.biomass_sd[index] ** 2, weight)  # fmt: skip
                rate[at], rate_variance[at] = mixture(rate[at], rate_variance[at], alternative.growth_rate_per_h[index],
                                                      alternative.growth_rate_sd[index] ** 2, weight)  # fmt: skip
    biomass_sd = np.sqrt(biomass_variance)
    co2, co2_sd = co2_from_biomass(biomass, biomass_sd, dilution, volume_l, strain.carbon_fraction)
    flags = np.array(FLAG_NAMES, dtype=object)[chain_flags]
    if stuck is not None:
        flags[stuck] = "stuck"
    for detected, _, end in suspensions:
        flags[detected:end] = np.where(onsets[detected:end] >= 0, "outgrowing", "suspended")
    gas_co2 = gas_sd = np.full(times.size, np.nan)
    balance = co2_from_gas_balance(times_h, readings, volume_l, strain.salinity, [t for t, _ in harvests])
    if balance is not None:
        gas_co2, gas_sd = balance.at(times)
    return UnitEstimates(sensor, times, biomass, biomass_sd, rate, np.sqrt(rate_variance), co2, co2_sd, flags,
                         gas_co2, gas_sd, agreement(co2, co2_sd, gas_co2, gas_sd), informed_by,
                         drifting, window_terms)  # fmt: skip


def calibrated_biomass(values: np.ndarray, model: GrowthModel) -> tuple[np.ndarray, np.ndarray]:
    """A probe's readings s as biomass through its calibration curve, x = h⁻¹(s), s = c0 + a x + c x², and
    the noise sd of each in g/L, √(σ_abs² + (σ_rel s)²) / h'(x) (the chain's noise model)."""
    signal = np.asarray(values, dtype=float) - model.od_intercept
    a, c = model.od_per_g_per_l, model.od_quadratic
    with np.errstate(invalid="ignore"):
        biomass = 2.0 * signal / (a + np.sqrt(np.maximum(a * a + 4.0 * c * signal, 0.0)))
    noise = np.hypot(model.od_noise_sd, model.od_relative_noise * np.asarray(values, dtype=float))
    return biomass, noise / np.maximum(a + 2.0 * c * biomass, 1e-12 * a)


def outgrowing_probe_onsets(times_h: np.ndarray, values: np.ndarray, model: GrowthModel, strain: Strain,
                            harvest_times_h: list[float],
                            recalibration_times_h: list[float] = ()) -> np.ndarray:  # fmt: skip
    """fusion.growth_limit's test on a biomass probe's calibrated readings, with limits ``GROWTH_MARGIN`` ×
    μ_max; windows over a known harvest or dilution and its transient (the catalog's ``transient_h``), or over
    a recalibration, are not tested."""
    biomass, noise = calibrated_biomass(values, model)
    limit = GROWTH_MARGIN * strain.mu_max_per_h
    untested = [*harvest_times_h, *recalibration_times_h]
    transient = [EVENTS["harvest"].transient_h] * len(harvest_times_h) + [0.0] * len(recalibration_times_h)
    return outgrowing_onsets(times_h, biomass, noise, model.initial_baseline_sd / model.od_per_g_per_l, limit,
                             limit, untested, transient_h=transient)  # fmt: skip


def recalibrations_by_sensor(calibration_events: Iterable[tuple[float, dict]],
                             sensors: tuple[str, ...] = BIOMASS_SENSORS) -> dict[str, list[float]]:  # fmt: skip
    """Times (h) each of ``sensors`` was recalibrated, from a unit's ``calibration`` events as (time_h, params):
    an event for the sensor its params name (``{"sensor": "od750"}``) or, naming none, for all of them."""
    recalibrations: dict[str, list[float]] = {sensor: [] for sensor in sensors}
    for time_h, params in calibration_events:
        named = params.get("sensor")
        for sensor in sensors if named is None else [named]:
            if sensor in recalibrations:
                recalibrations[sensor].append(float(time_h))
    return recalibrations


def probe_suspensions(onsets: np.ndarray, times_h: np.ndarray,
                      recalibrations_h: list[float]) -> list[tuple[int, int, int]]:  # fmt: skip
    """(detected, first, end) sample indices: from the first sample the growth-limit test fires at
    (``onsets`` ≥ 0) the probe is suspended, its readings withheld after ``first`` (where the ramp the test
    saw starts, its last sound reading; not before the previous suspension's end) up to ``end`` (the first
    sample at or after the next recalibration, or the record's end); a new suspension can start only after
    that."""
    suspensions: list[tuple[int, int, int]] = []
    fired = np.flatnonzero(onsets >= 0)
    recalibrations = np.sort(np.asarray(recalibrations_h, dtype=float))
    resume = 0
    while (later := fired[fired >= resume]).size:
        detected = int(later[0])
        following = recalibrations[recalibrations > times_h[detected]]
        end = int(np.searchsorted(times_h, following[0], side="left")) if following.size else times_h.size
        suspensions.append((detected, max(int(onsets[detected]), resume), end))
        if end >= times_h.size:
            break
        resume = end
    return suspensions


def mixture(first_mean: np.ndarray, first_variance: np.ndarray, second_mean: np.ndarray,
            second_variance: np.ndarray, second_weight: float = 0.5) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """Moment-matched Gaussian of a two-component mixture, weight w on the second:
    m = (1 − w) m₁ + w m₂,  P = (1 − w) P₁ + w P₂ + w (1 − w) (m₁ − m₂)²  (w = ½: the equal mixture)."""
    w = second_weight
    mean = (1.0 - w) * first_mean + w * second_mean
    variance = (1.0 - w) * first_variance + w * second_variance + w * (1.0 - w) * (first_mean - second_mean) ** 2
    return mean, variance


def drifting_biomass_samples(times_h: np.ndarray, readings: dict[str, np.ndarray], sensor: str, other: str,
                             strain: Strain, calibrations: dict[str, BiomassCalibration]) -> np.ndarray:  # fmt: skip
    """Causal drift flags of biomass ``sensor`` against ``other`` at ``sensor``'s samples (its non-NaN readings
    of ``readings`` at ``times_h``), on calibrated readings X̂ = h⁻¹(s) with stuck stretches left out; the
    other's last sample at or before each time is used for ``HOLD_H`` hours."""
    times_h = np.asarray(times_h, dtype=float)
    calibrated = {}
    for name in (sensor, other):
        values = np.asarray(readings[name], dtype=float)
        sampled = ~np.isnan(values)
        values = values[sampled]
        spec = SENSORS[name]
        stuck = stuck_samples(values, spec.noise_sd, spec.resolution)
        if stuck is not None:
            values = np.where(stuck, np.nan, values)  # a stuck stretch is its own fault, not a drift
        factor = sensor_growth_model(name, strain, calibration=calibrations.get(name))
        calibrated[name] = (times_h[sampled], calibrated_biomass(values, factor)[0],
                            factor.od_noise_sd / factor.od_per_g_per_l)  # fmt: skip
    times, own, own_noise = calibrated[sensor]
    other_times, other_values, other_noise = calibrated[other]
    kept = np.isfinite(other_values)
    held = held_values(other_times[kept], other_values[kept], times, HOLD_H)
    return drifting_samples(own, held, float(np.hypot(own_noise, other_noise)), slope_tolerance=SLOPE_TOLERANCE)
