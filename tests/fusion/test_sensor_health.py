"""Stuck sensors: the repeat statistics of a healthy quantised sensor, and the simulator's faults (stuck,
spike burst, 30 % dropouts; fixture ``faulty`` in conftest) read through `algaflow fuse`."""

import numpy as np
import pandas as pd

from algaflow.cli.fuse import fuse_file
from algaflow.fusion.sensor_health import STUCK_RUN, stuck_samples


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
    for start, end in ((10.0, 14.0), (16.0, 18.0), (18.0, 22.0)):
        window = (hours >= start) & (hours < end)
        assert inside[window].mean() > 0.9, (start, end)
