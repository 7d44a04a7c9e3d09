import numpy as np
import pandas as pd
import pytest

from algaflow.catalog import SENSORS
from algaflow.sim.scenario import parse_scenario
from algaflow.sim.simulate import simulate


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("sim")
    scenario = parse_scenario({
        "units": 2, "days": 3, "seed": 7,
        "faults": [{"sensor": "ph_tube", "kind": "drift", "start_h": 24, "magnitude": 0.3},
                   {"sensor": "do_tank", "kind": "stuck", "start_h": 30, "end_h": 40},
                   {"sensor": "od750", "kind": "offline", "start_h": 10, "end_h": 20, "units": [1]}],
    })  # fmt: skip
    simulate(scenario, folder)
    return (pd.read_parquet(folder / "telemetry.parquet"), pd.read_parquet(folder / "truth.parquet"),
            pd.read_parquet(folder / "events.parquet"))  # fmt: skip


def test_files_follow_the_contracts(run):
    telemetry, truth, events = run
    assert list(telemetry.columns) == ["unit_id", "time", "sensor", "value"]
    assert list(events.columns) == ["unit_id", "time", "kind", "params"]
    assert {"unit_id", "time", "biomass_g_per_l", "growth_rate_per_h", "co2_captured_g"} <= set(truth.columns)
    assert str(telemetry["time"].dt.tz) == "UTC"
    assert set(telemetry["sensor"]) == set(SENSORS)


def _joined(telemetry, truth, sensor, column, unit="unit-00000"):
    readings = telemetry[(telemetry.unit_id == unit) & (telemetry.sensor == sensor)].sort_values("time")
    rows = truth[truth.unit_id == unit]
    seconds = (rows.time - rows.time.iloc[0]).dt.total_seconds().to_numpy()
    read_seconds = (readings.time - rows.time.iloc[0]).dt.total_seconds().to_numpy()
    return read_seconds, readings.value.to_numpy(), np.interp(read_seconds, seconds, rows[column].to_numpy())


def test_readings_scatter_around_truth_with_catalog_noise(run):
    telemetry, truth, _ = run
    _, readings, true = _joined(telemetry, truth, "temp_tank", "temperature_c")
    residual = readings - true
    assert abs(np.median(residual)) < 0.2
    assert 0.5 * SENSORS["temp_tank"].noise_sd < np.std(residual) < 3 * SENSORS["temp_tank"].noise_sd
    _, readings, true = _joined(telemetry, truth, "do_tube", "o2_lit_mg_per_l")
    assert np.corrcoef(readings, true)[0, 1] > 0.9


def test_faults_show_in_the_readings_and_the_events(run):
    telemetry, truth, events = run
    seconds, readings, true = _joined(telemetry, truth, "ph_tube", "ph_lit")
    late = seconds > 60 * 3600
    assert np.median(readings[late] - true[late]) > 0.3 * (60 - 24) / 24 * 0.8
    seconds, readings, _ = _joined(telemetry, truth, "do_tank", "o2_tank_mg_per_l")
    stuck = (seconds >= 30 * 3600) & (seconds < 40 * 3600)
    assert np.unique(readings[stuck]).size == 1
    od = telemetry[(telemetry.unit_id == "unit-00001") & (telemetry.sensor == "od750")]
    hours = (od.time - truth.time.min()).dt.total_seconds() / 3600
    assert not ((hours >= 10) & (hours < 20)).any()
    assert {"fault_start", "lab_entry"} <= set(events.kind)


def test_readings_are_quantised_and_inside_range(run):
    telemetry, _, _ = run
    for name, spec in SENSORS.items():
        values = telemetry[telemetry.sensor == name].value.to_numpy()
        assert values.min() >= spec.range[0] and values.max() <= spec.range[1]
        np.testing.assert_allclose(values / spec.resolution, np.round(values / spec.resolution), atol=1e-6)



def test_a_photometers_offset_is_drawn_with_the_catalog_offset_sd():
    """Each unit's probe keeps one calibration offset, N(0, offset_sd²): over 40 units, the sd of the mean
    od750 reading error (the noise averaged out over the run) is the catalog's 2 noise sd (0.01 AU), within
    the sampling error of 40 draws (sd ≈ 11 %); half the noise sd, the other probes' default, would be 0.25."""
    from algaflow.sim.suites import simulate_cases

    spec = SENSORS["od750"]
    assert spec.offset_sd == pytest.approx(2 * spec.noise_sd) and SENSORS["temp_tube"].offset_sd == pytest.approx(
        0.5 * SENSORS["temp_tube"].noise_sd)
    errors = []
    for case in simulate_cases("constant", "gaussian", sensors=("od750",), units=40, seed=3):
        times, values = case.readings["od750"]
        errors.append(np.mean(values - case.truth_at(times)[0] * case.strain.od750_per_g_per_l))
    assert 0.7 < np.std(errors, ddof=1) / spec.offset_sd < 1.3
