"""A probe that moves faster than any culture can: the growth-limit test on synthetic records with a known
ramp (latency against the noise-free expectation of the module doc's inequality), on exponential growth
at and beyond the limit, on steps, bubble spikes and known harvests (never ramps), and over every simulated
growth profile and noise family (no culture of the suites outgrows its strain)."""

import numpy as np
import pytest

from algaflow.catalog import load_strain
from algaflow.fusion.estimator import outgrowing_probe_onsets, sensor_growth_model
from algaflow.fusion.growth_limit import (
    GROWTH_MARGIN,
    LEVEL_SIGMAS,
    LIMIT_SIGMAS,
    SCALES,
    WINDOWS,
    outgrowing_onsets,
    reference_noise_sd,
    window_medians,
)
from algaflow.sim.suites import NOISE_FAMILIES, PROFILES, simulate_cases

SIGMA = 0.005  # g/L: od750's noise at a slope of 1 AU per g/L
OFFSET = 0.01  # g/L: od750's offset sd
STEP_H = 1.0 / 60.0
LIMIT = GROWTH_MARGIN * load_strain("chlorella_vulgaris").mu_max_per_h


def _onsets(times, values, harvests=()):
    return outgrowing_onsets(times, values, np.full(values.size, SIGMA), OFFSET, LIMIT, LIMIT, list(harvests))


def test_window_medians_and_the_reference_noise_follow_their_definitions():
    rng = np.random.default_rng(1)
    values = rng.standard_normal(300)
    medians = window_medians(values, 9)
    assert medians.size == values.size - 8
    assert np.allclose(medians, [np.median(values[i:i + 9]) for i in range(values.size - 8)])
    white = 0.3 + SIGMA * rng.standard_normal(1000)
    noise = reference_noise_sd(white)
    assert noise.size == white.size and (noise[:2] == 0).all()
    assert noise[-1] == pytest.approx(SIGMA, rel=0.15)
    assert (noise[243:] == noise[242]).all()  # held after the first 243 readings
    ramped = reference_noise_sd(white + 0.01 * np.arange(white.size))  # a ramp moves all differences alike
    assert np.allclose(ramped, noise)


def expected_latency(rate_g_per_l_per_h: float, level_g_per_l: float) -> int:
    """Samples from a ramp's start to its flag (module doc): four windows on the ramp at the smallest scale
    whose noise-free step beyond the fastest growth exceeds k_σ + 2 sd of a difference of two medians (two
    more than the threshold, so that noise rarely holds the flag back to a larger scale)."""
    for w in SCALES:
        ceiling = level_g_per_l + LEVEL_SIGMAS * (OFFSET + 1.2533 * SIGMA / np.sqrt(w))
        excess = abs(rate_g_per_l_per_h) * w * STEP_H - ceiling * abs(np.expm1(np.sign(rate_g_per_l_per_h)
                                                                               * LIMIT * w * STEP_H))
        if excess > (LIMIT_SIGMAS + 2.0) * 1.2533 * SIGMA * np.sqrt(2.0 / w):
            return WINDOWS * w - 1
    raise AssertionError("no scale sees this ramp")


@pytest.mark.parametrize("rate", [0.6, 0.3, 0.1, -0.3, -0.1])
def test_a_ramp_faster_than_any_culture_is_flagged_within_four_windows(rate):
    """A steady 0.3 g/L culture read every minute, the probe ramping from sample 600 on (0.3 g/L/h is one
    noise sd a minute): never flagged before, flagged by the expected sample (a few more for noise)."""
    expected = expected_latency(rate, 0.3)
    for seed in range(5):
        rng = np.random.default_rng(seed)
        times = np.arange(1200) * STEP_H
        values = 0.3 + SIGMA * rng.standard_normal(times.size) + rate * np.maximum(times - times[600], 0.0)
        onsets = _onsets(times, values)
        fired = np.flatnonzero(onsets >= 0)
        assert fired.size and fired[0] >= 600, (seed, fired[:3])
        assert fired[0] - 600 <= expected + 3, (seed, fired[0] - 600, expected)
        assert abs(onsets[fired[0]] - 600) <= expected  # the ramp's start, as the windows saw it
    if abs(rate) >= 0.3:
        assert expected <= 35  # minutes at 1-min samples


def test_growth_at_the_limit_is_not_flagged_and_beyond_it_is():
    """Exponential growth at μ = GROWTH_MARGIN μ_max from 0.02 g/L (OD noise as the chain has it, absolute
    and 1 % relative) is no drift; 1.5 times faster, no culture grows: flagged."""
    rng = np.random.default_rng(3)
    times = np.arange(int(24 / STEP_H)) * STEP_H
    for factor, flagged in ((1.0, False), (1.5, True)):
        truth = 0.02 * np.exp(factor * LIMIT * times)
        noise = np.hypot(SIGMA, 0.01 * truth)
        values = truth + noise * rng.standard_normal(times.size)
        onsets = outgrowing_onsets(times, values, noise, OFFSET, LIMIT, LIMIT)
        assert (onsets >= 0).any() == flagged, factor


def test_steps_spikes_and_known_harvests_are_not_ramps():
    """An unannounced step (a knocked probe, an unlogged harvest), bubble spikes of 10–30 sd on 5 % of the
    samples and a logged 70 % harvest: none is a ramp, none is flagged."""
    rng = np.random.default_rng(4)
    times = np.arange(3000) * STEP_H
    values = 0.4 + SIGMA * rng.standard_normal(times.size)
    values[1000:] += 0.2  # a step up between two samples
    spikes = rng.random(times.size) < 0.05
    values[spikes] += SIGMA * rng.uniform(10.0, 30.0, spikes.sum()) * rng.choice([-1.0, 1.0], spikes.sum())
    values[2000:] *= 0.3  # a harvest of 70 %
    assert not (_onsets(times, values, harvests=[times[2000] - 0.001]) >= 0).any()
    assert not (_onsets(times, values) >= 0).any()  # unlogged, the harvest is a step all the same


def test_bad_input_is_refused_with_a_reason():
    times = np.arange(100) * STEP_H
    with pytest.raises(ValueError, match="must match"):
        outgrowing_onsets(times, np.zeros(99), SIGMA, OFFSET, LIMIT, LIMIT)
    with pytest.raises(ValueError, match="odd"):
        outgrowing_onsets(times, np.zeros(100), SIGMA, OFFSET, LIMIT, LIMIT, scales=(4,))
    with pytest.raises(ValueError, match="> 0"):
        outgrowing_onsets(times, np.zeros(100), SIGMA, OFFSET, 0.0, LIMIT)
    short = outgrowing_onsets(times[:5], np.r_[0.1, np.nan, 0.2, 0.3, 5.0], SIGMA, OFFSET, LIMIT, LIMIT)
    assert (short == -1).all()  # too few readings for any window: nothing judged


def test_no_simulated_culture_outgrows_its_strain():
    """Every growth profile (harvests, lamp off, temperature steps, outdoor sun) under every noise family
    (bubbles, heavy tails, slow drift, dropouts, gaps), on a photometer and a turbidity probe: no flag."""
    samples = 0
    for profile in PROFILES:
        for family in NOISE_FAMILIES:
            for case in simulate_cases(profile, family, sensors=("od750", "turbidity_tank"), units=2, seed=11):
                for sensor, (times, values) in case.readings.items():
                    model = sensor_growth_model(sensor, case.strain)
                    onsets = outgrowing_probe_onsets(times, values, model, case.strain, list(case.harvest_times_h))
                    assert not (onsets >= 0).any(), (profile, family, case.unit, sensor)
                    samples += times.size
    assert samples > 500_000


def test_the_transient_after_a_known_harvest_is_no_verdict_on_the_probe():
    """A harvest drains and refills the tube: the reading falls over 40 minutes instead of stepping (readings
    mid-mix), a fall faster than any culture is lost. Within the transient after the logged harvest the probe
    is not judged; logged without its transient, or not logged, the same fall is flagged."""
    rng = np.random.default_rng(5)
    times = np.arange(1200) * STEP_H
    level = np.full(times.size, 0.8)
    harvest = 600
    level[harvest:] = 0.8 - 0.56 * np.minimum((times[harvest:] - times[harvest]) / (40 * STEP_H), 1.0)
    values = level + SIGMA * rng.standard_normal(times.size)
    at = [times[harvest] - 0.001]
    noise = np.full(times.size, SIGMA)
    assert not (outgrowing_onsets(times, values, noise, OFFSET, LIMIT, LIMIT, at, transient_h=2.0) >= 0).any()
    assert (outgrowing_onsets(times, values, noise, OFFSET, LIMIT, LIMIT, at, transient_h=0.0) >= 0).any()
    assert (_onsets(times, values) >= 0).any()
