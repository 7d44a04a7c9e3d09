"""Glitches (spikes, level jumps, saturation) on synthetic records with known positions; stuck sensors: the
repeat statistics of a healthy quantised sensor; drift against a second reading of the same quantity, on a
steady level (latency: the first of the median test, from the noise of two medians, and the CUSUM, from its
noise-free sum), with bubble spikes and dropouts, and against a slope error on a growing one; and the
simulator's faults (stuck, spike burst, 30 % dropouts, a drifting OD probe beside a turbidity probe;
fixture ``faulty`` in conftest) read through `algaflow fuse`."""

import numpy as np
import pandas as pd
import pytest

from algaflow.catalog import SENSORS
from algaflow.cli.fuse import fuse_file
from algaflow.fusion.sensor_health import (
    CUSUM_ALLOWANCE,
    CUSUM_CLIP,
    CUSUM_THRESHOLD,
    DRIFT_SIGMAS,
    DRIFT_WINDOW,
    STUCK_RUN,
    drifting_samples,
    jump_samples,
    saturated_samples,
    spike_samples,
    stuck_samples,
)


def test_a_healthy_quantised_sensor_is_never_called_stuck():
    rng = np.random.default_rng(0)
    od = np.round((0.5 + 0.005 * rng.standard_normal(200_000)) / 0.001) * 0.001
    assert not stuck_samples(od, 0.005, 0.001).any()
    assert stuck_samples(od, 0.0005, 0.001) is None  # noise below resolution: repeats prove nothing


def test_a_stuck_run_is_flagged_from_its_seventh_equal_reading_across_dropouts():
    values = np.array([0.50, 0.51, 0.49, 0.52, 0.52, np.nan, 0.52, 0.52, 0.52, 0.52, 0.52, 0.52, 0.53])
    flags = stuck_samples(values, 0.005, 0.001)
    assert STUCK_RUN == 7
    assert flags.tolist() == [False] * 10 + [True, True, False]


def test_faults_are_flagged_within_minutes_and_the_estimate_stays_in_its_band(faulty):
    estimates = fuse_file(faulty / "telemetry.parquet", faulty / "estimates.csv", faulty / "events.parquet")
    truth = pd.read_parquet(faulty / "truth.parquet").set_index("time").sort_index()
    hours = (estimates["time"] - estimates["time"].min()).dt.total_seconds().to_numpy() / 3600.0
    true_biomass = truth["biomass_g_per_l"].to_numpy()[truth.index.get_indexer(estimates["time"], method="nearest")]
    inside = np.abs(estimates["biomass_g_per_l"] - true_biomass) <= 1.96 * estimates["biomass_sd"]
    flags = estimates["sample_flag"].to_numpy()
    stuck = hours[(flags == "stuck") & (hours >= 10.0)]
    assert stuck.min() - 10.0 <= 8 / 60  # the seventh equal 1-min reading
    assert np.mean(flags[(hours >= 10.2) & (hours < 14.0)] == "stuck") > 0.95
    burst = (hours >= 16.0) & (hours < 18.0)
    assert np.isin(flags[burst], ["downweighted", "rejected_outlier"]).sum() >= 20  # ~36 spikes, some small
    gaps = np.diff(hours[(hours >= 18.0) & (hours < 22.0)])
    assert np.mean(gaps > 1.5 / 60) > 0.15  # the dropouts are absent samples, not invented ones
    drifting = estimates["drifting_sensors"].fillna("").to_numpy() != ""
    assert not drifting[hours < 24.0].any()
    # 0.2 AU/day is 1 σ of the pair an hour: on a steady culture the CUSUM would flag it in ~80 min; here
    # the culture has grown since the reference window, and the 5 % slope band at the new level comes first.
    assert 24.0 < hours[drifting].min() < 24.0 + 3.5
    assert set(estimates["drifting_sensors"][drifting]) == {"od750,turbidity_tank"}
    assert drifting[hours >= 28.0].mean() > 0.95
    for start, end in ((10.0, 14.0), (16.0, 18.0), (18.0, 22.0), (24.0, 36.0)):
        window = (hours >= start) & (hours < end)
        assert inside[window].mean() > 0.9, (start, end)


PAIR_SD = np.hypot(0.005, 0.0067)  # od750 and turbidity_tank, in g/L


def _steady_pair(rng: np.random.Generator, samples: int) -> tuple[np.ndarray, np.ndarray]:
    return 0.5 + 0.005 * rng.standard_normal(samples), 0.5 + 0.0067 * rng.standard_normal(samples)


def _median_test_samples(rate: float) -> float:
    """Samples after a drift of ``rate`` σ_D per sample starts until |median change| > k_d se, plus the
    trailing median's lag."""
    standard_error = 1.2533 * np.sqrt(2.0 / DRIFT_WINDOW)  # in σ_D
    return DRIFT_SIGMAS * standard_error / rate + (DRIFT_WINDOW - 1) / 2


def _cusum_samples(rate: float) -> int:
    """Noise-free CUSUM: the first n with Σ_{i≤n} max(0, min(r i, c) − ν) > h."""
    ramp = rate * np.arange(1, 100_000)
    total = np.cumsum(np.maximum(np.minimum(ramp, CUSUM_CLIP) - CUSUM_ALLOWANCE, 0.0))
    return int(np.argmax(total > CUSUM_THRESHOLD)) + 1


@pytest.mark.parametrize("rate", [1.0, 0.1, 1 / 60, 3 / 1440])  # σ_D per sample: a minute to 3 σ a day
def test_drift_is_flagged_by_the_first_of_the_median_test_and_the_cusum(rate):
    rng = np.random.default_rng(21)
    samples, start = 6 * 1440, 1440
    own, other = _steady_pair(rng, samples)
    own += rate * PAIR_SD * np.clip(np.arange(samples) - start, 0, None)
    flags = drifting_samples(own, other, PAIR_SD)
    expected = min(_median_test_samples(rate), _cusum_samples(rate))
    first = np.flatnonzero(flags)[0] - start
    assert 0.6 * expected <= first <= 1.4 * expected, (first, expected)
    assert flags[start + int(1.5 * expected):].all()


def test_drift_flags_no_steady_pair_with_bubble_spikes_and_survives_dropouts():
    rng = np.random.default_rng(22)
    samples = 14 * 1440
    for _ in range(3):  # two weeks each, 5 % bubble spikes of 10–30 σ in each sensor
        own, other = _steady_pair(rng, samples)
        for series, sd in ((own, 0.005), (other, 0.0067)):
            spikes = rng.random(samples) < 0.05
            series[spikes] += 20 * sd * rng.uniform(0.5, 1.5, spikes.sum())
        assert not drifting_samples(own, other, PAIR_SD).any()
    own, other = _steady_pair(rng, samples)
    rate = 0.1  # σ_D per sample, from the first day on; 20 % of the samples missing in one or the other
    own += rate * PAIR_SD * np.clip(np.arange(samples) - 1440, 0, None)
    own[rng.random(samples) < 0.2] = np.nan
    flags = drifting_samples(own, other, PAIR_SD)
    joint_after = np.cumsum(np.isfinite(own[1440:]))  # the drift's samples that reach the check
    first = joint_after[np.flatnonzero(flags[1440:])[0]]
    assert not flags[:1440].any() and first <= 1.4 * _cusum_samples(rate / 0.8)


def test_a_calibration_slope_error_on_a_growing_culture_is_not_a_drift():
    """A growing culture read 3 % steeper by one sensor: the difference grows with the level, not time."""
    rng = np.random.default_rng(23)
    hours = np.arange(0.0, 96.0, 1 / 60)
    growing = 0.1 * np.exp(0.02 * hours)
    steeper = 1.03 * growing + 0.005 * rng.standard_normal(hours.size)
    assert not drifting_samples(steeper, growing + 0.0067 * rng.standard_normal(hours.size), PAIR_SD,
                                slope_tolerance=0.05).any()  # fmt: skip
    with pytest.raises(ValueError, match="same samples"):
        drifting_samples(steeper, growing[:-1], PAIR_SD)


def test_hampel_finds_bubble_spikes_on_ph_without_false_alarms():
    """pH with the catalog noise and a slow diurnal swing; bubble spikes of −6 to −9 σ at random samples."""
    rng = np.random.default_rng(11)
    sigma = SENSORS["ph_tank"].noise_sd
    minutes = np.arange(10 * 1440)
    clean = 7.8 + 0.3 * np.sin(2 * np.pi * minutes / 1440) + sigma * rng.standard_normal(minutes.size)
    assert spike_samples(clean, sigma).mean() < 1e-3
    spiky = clean.copy()
    where = rng.choice(minutes.size, 200, replace=False)
    spiky[where] -= sigma * rng.uniform(7.0, 10.0, where.size)
    flags = spike_samples(spiky, sigma)
    assert flags[where].mean() > 0.9
    assert np.delete(flags, where).mean() < 1e-3


def test_level_jumps_are_found_where_they_happen_and_not_in_a_diurnal_swing():
    rng = np.random.default_rng(12)
    sigma = SENSORS["temp_tank"].noise_sd
    minutes = np.arange(6 * 1440)
    diurnal = 25.0 + 3.0 * np.sin(2 * np.pi * minutes / 1440) + sigma * rng.standard_normal(minutes.size)
    assert not jump_samples(diurnal, sigma).any()
    jumped = diurnal + 1.0 * (minutes >= 3000) - 0.5 * (minutes >= 6000)
    jumped[rng.random(minutes.size) < 0.05] = np.nan  # dropouts do not hide them
    found = np.flatnonzero(jump_samples(jumped, sigma))
    assert len(found) == 2
    np.testing.assert_allclose(found, [3000, 6000], atol=3)


def test_saturation_at_the_range_and_pinned_below_it():
    values = np.r_[np.linspace(1000, 80000, 50), np.full(20, 80000.0), np.linspace(79000, 60000, 30)]
    flags = saturated_samples(values, 0.0, 200000.0, 1.0)
    assert flags[50:70].all() and flags[49] and not flags[:48].any() and not flags[70:].any()
    assert saturated_samples(np.array([0.0, 1.0, 2.0, 200000.0]), 0.0, 200000.0, 1.0).tolist() == [True, False,
                                                                                                   False, True]
