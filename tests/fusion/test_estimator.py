"""The reactor estimator: each biomass sensor's factor from the catalog; dry weights from the telemetry join the
biomass chain as factors on X; a sole probe that outgrows its culture is suspended until recalibrated."""

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from algaflow.catalog import SENSORS, load_strain
from algaflow.cli.fuse import fuse_file
from algaflow.cli.main import app
from algaflow.fusion.calibration import fit_biomass_calibration
from algaflow.fusion.estimator import (
    BIOMASS_SENSORS,
    dry_weight_at_samples,
    estimate_unit,
    probe_suspensions,
    recalibrations_by_sensor,
    sensor_growth_model,
)
from algaflow.sim.suites import simulate_cases

STRAIN = load_strain("chlorella_vulgaris")


@pytest.mark.parametrize("sensor", BIOMASS_SENSORS)
def test_the_baseline_prior_is_the_catalogs_offset_and_a_curve_adds_its_intercept_variance(sensor):
    """The offset a calibration leaves on the probe (the catalog's offset_sd, which the simulator draws) is the
    prior sd of the chain's baseline; a fitted curve's intercept variance adds to it."""
    spec = SENSORS[sensor]
    model = sensor_growth_model(sensor, STRAIN)
    assert model.initial_baseline_sd == spec.offset_sd and model.od_noise_sd == spec.noise_sd
    biomass = np.linspace(0.1, 2.0, 12)
    signal = 0.02 + 0.9 * biomass + 0.01 * np.sin(7 * biomass)
    curve = fit_biomass_calibration(biomass, signal, sensor=sensor, strain="chlorella_vulgaris")
    with_curve = sensor_growth_model(sensor, STRAIN, calibration=curve)
    assert with_curve.initial_baseline_sd == pytest.approx(np.hypot(spec.offset_sd, np.sqrt(curve.covariance[0][0])))


def test_a_dry_weight_is_placed_on_the_first_chain_sample_at_or_after_it():
    times_h = np.array([0.0, 0.5, 1.0, 1.2, 2.0, 3.5])
    readings = {"dry_weight": np.array([np.nan, 0.4, np.nan, 0.5, np.nan, 0.9])}
    placed = dry_weight_at_samples(times_h, readings, np.array([0.0, 1.0, 1.5, 3.0]))
    np.testing.assert_array_equal(placed, [np.nan, 0.4, 0.5, np.nan])  # 0.9 at 3.5 h is after the last sample
    np.testing.assert_array_equal(dry_weight_at_samples(times_h, {}, np.array([0.0, 1.0])), [np.nan, np.nan])


@pytest.mark.parametrize("profile", ["logistic", "constant", "lag_exponential_stationary"])
def test_simulated_dry_weights_tighten_a_drifting_probes_biomass(profile):
    """The drifting-probe family (OD drifting up to 3 noise sd a day, dropouts, gaps), with the simulator's
    daily dry weights (sd 0.02 g/L, no probe to drift) in the telemetry: the estimate's biomass error falls
    and its band narrows, and the band covers the truth at least as often as without them."""
    errors, sds, covers = {}, {}, {}
    for case in simulate_cases(profile, "drift_dropouts_gaps", sensors=("od750", "dry_weight"), units=2, seed=5):
        od_times, od = case.readings["od750"]
        dw_times, dw = case.readings["dry_weight"]
        times_h = np.union1d(od_times, dw_times)
        on_grid = {"od750": np.full(times_h.size, np.nan), "dry_weight": np.full(times_h.size, np.nan)}
        on_grid["od750"][np.searchsorted(times_h, od_times)] = od
        on_grid["dry_weight"][np.searchsorted(times_h, dw_times)] = dw
        for name, readings in (("od", {"od750": on_grid["od750"]}), ("od+dw", on_grid)):
            estimates = estimate_unit(times_h, readings, [], STRAIN, 80.0)
            truth, _ = case.truth_at(estimates.times_h)
            late = estimates.times_h > 30.0
            error = (estimates.biomass_g_per_l - truth)[late]
            errors.setdefault(name, []).append(error)
            sds.setdefault(name, []).append(estimates.biomass_sd[late])
            covers.setdefault(name, []).append(np.abs(error) <= 1.96 * estimates.biomass_sd[late])
    rmse = {name: np.sqrt(np.mean(np.concatenate(e) ** 2)) for name, e in errors.items()}
    band = {name: np.median(np.concatenate(s)) for name, s in sds.items()}
    cover = {name: np.mean(np.concatenate(c)) for name, c in covers.items()}
    assert rmse["od+dw"] < 0.7 * rmse["od"]
    assert band["od+dw"] < 0.9 * band["od"]
    assert cover["od+dw"] >= min(cover["od"], 0.9)


def test_suspensions_run_from_the_ramps_start_to_the_next_recalibration():
    times = np.arange(20.0)
    onsets = np.full(20, -1)
    onsets[[6, 7, 15]] = [2, 3, 12]
    assert probe_suspensions(onsets, times, []) == [(6, 2, 20)]
    assert probe_suspensions(onsets, times, [9.5]) == [(6, 2, 10), (15, 12, 20)]
    onsets[15] = 8  # a ramp seen from before the last suspension's end is withheld from that end on
    assert probe_suspensions(onsets, times, [9.5, 13.0]) == [(6, 2, 10), (15, 10, 20)]
    assert probe_suspensions(np.full(20, -1), times, [5.0]) == []
    events = [(3.0, {"sensor": "od750"}), (4.0, {}), (5.0, {"sensor": "ph_tank"})]
    assert recalibrations_by_sensor(events, ("od750", "od680")) == {"od750": [3.0, 4.0], "od680": [4.0]}


def _fused_against_truth(folder, events_path, smooth=False):
    estimates = fuse_file(folder / "telemetry.parquet", folder / "estimates.csv", events_path, smooth=smooth)
    truth = pd.read_parquet(folder / "truth.parquet")
    for unit, rows in estimates.groupby("unit_id"):
        true = truth[truth["unit_id"] == unit].set_index("time").sort_index()
        hours = (rows["time"] - rows["time"].min()).dt.total_seconds().to_numpy() / 3600.0
        biomass = true["biomass_g_per_l"].to_numpy()[true.index.get_indexer(rows["time"], method="nearest")]
        inside = np.abs(rows["biomass_g_per_l"].to_numpy() - biomass) <= 1.96 * rows["biomass_sd"].to_numpy()
        yield unit, rows, hours, inside


def test_a_sole_probe_outgrowing_its_culture_is_flagged_in_minutes_and_suspended_until_recalibrated(outgrowing):
    """od750 alone, drifting one noise sd a minute from 24 h to 30 h (fixture ``outgrowing``): flagged within
    35 min, never before; its readings are withheld from the ramp's start and the band keeps the truth. Without
    a recalibration the probe stays suspended to the end; a ``calibration`` event at 31 h brings it back."""
    for unit, rows, hours, inside in _fused_against_truth(outgrowing, outgrowing / "events.parquet"):
        drifting = rows["drifting_sensors"].fillna("").to_numpy() == "od750"
        assert not drifting[hours < 24.0].any(), unit
        assert 24.0 < hours[drifting].min() < 24.0 + 35 / 60, unit
        assert drifting[hours >= hours[drifting].min()].all()  # suspended to the end of the record
        flags = rows["sample_flag"].to_numpy()
        assert set(flags[drifting]) == {"outgrowing", "suspended"}
        assert inside[hours < 24.0].mean() > 0.95 and inside[hours >= 24.0].mean() > 0.9, unit
    result = CliRunner().invoke(app, ["fuse", str(outgrowing / "telemetry.parquet"), "--events",
                                      str(outgrowing / "events.parquet"), "--out", str(outgrowing / "cli.csv")])
    assert result.exit_code == 0 and "od750 moved faster than any culture can" in result.output, result.output
    for unit, rows, _hours, inside in _fused_against_truth(outgrowing, outgrowing / "events.parquet", smooth=True):
        assert (rows["drifting_sensors"].fillna("").to_numpy() == "od750").any()
        assert inside.mean() > 0.95, unit  # offline, the chain withholds every suspension from the start
    events = pd.read_parquet(outgrowing / "events.parquet")
    recalibrated = pd.DataFrame({"unit_id": sorted(set(pd.read_parquet(outgrowing / "truth.parquet")["unit_id"])),
                                 "kind": "calibration", "params": json.dumps({"sensor": "od750"})})
    start = pd.read_parquet(outgrowing / "truth.parquet")["time"].min()
    recalibrated["time"] = start + pd.Timedelta(hours=31)
    path = outgrowing / "events_recalibrated.parquet"
    pd.concat([events, recalibrated[events.columns]], ignore_index=True).to_parquet(path)
    for unit, rows, hours, inside in _fused_against_truth(outgrowing, path):
        drifting = rows["drifting_sensors"].fillna("").to_numpy() == "od750"
        assert drifting[(hours > 25.0) & (hours < 31.0)].all() and not drifting[hours >= 31.0].any(), unit
        assert not set(rows["sample_flag"][hours >= 31.0]) & {"outgrowing", "suspended"}
        assert inside[hours >= 31.0].mean() > 0.9, unit
        assert rows["biomass_sd"][hours >= 33.0].max() < 0.5 * rows["biomass_sd"][(hours > 30.0) & (hours < 31.0)].max()


def test_a_suspended_probe_hands_the_estimate_to_the_units_other_biomass_sensor():
    """A steady 0.3 g/L culture read by od750 and turbidity_tank every minute; from 10 h the photometer ramps
    up one noise sd a minute. Once it is found outgrowing, it is the wrong one: the estimate is the turbidity
    chain alone (not the two-hypothesis mixture), on the truth and as certain as that chain."""
    rng = np.random.default_rng(7)
    times = np.arange(0.0, 20.0, 1.0 / 60.0)
    od = 0.3 + 0.005 * rng.standard_normal(times.size) + 0.3 * np.maximum(times - 10.0, 0.0)
    turbidity = 300.0 * 0.3 + 2.0 * rng.standard_normal(times.size)
    readings = {"od750": od, "turbidity_tank": turbidity}
    both = estimate_unit(times, readings, [], STRAIN, 80.0)
    alone = estimate_unit(times, {"turbidity_tank": turbidity}, [], STRAIN, 80.0)
    suspended = both.drifting == "od750"
    assert not suspended[times < 10.0].any() and 10.0 < times[suspended].min() < 10.6
    assert suspended[times >= times[suspended].min()].all()
    np.testing.assert_allclose(both.biomass_g_per_l[suspended], alone.biomass_g_per_l[suspended])
    np.testing.assert_allclose(both.biomass_sd[suspended], alone.biomass_sd[suspended])
    assert (np.abs(both.biomass_g_per_l - 0.3) <= 1.96 * both.biomass_sd).mean() > 0.95
