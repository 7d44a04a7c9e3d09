"""`algaflow sensors report` on the simulator's faults (fixture ``faulty`` in conftest): the used and the
redundant biomass sensor, a stuck stretch, a biased temperature probe, a drifting OD probe, a knocked pH
electrode (a level jump at 20 h) with a burst of bubble spikes (6–8 h); and a sole photometer that moves faster
than any culture (fixture ``outgrowing``); the two pH probes, compared in the dark."""

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from algaflow.catalog import load_strain
from algaflow.cli.fuse import unit_readings
from algaflow.cli.main import app
from algaflow.cli.sensors import report_file
from algaflow.fusion.sensor_information import dark_samples, drifting_in_the_dark, sensor_report
from tests.fusion.conftest import simulated


def test_the_sensor_report_ranks_biomass_sensors_and_finds_the_disagreeing_ones(faulty):
    early = {row.sensor: row for row in report_file(faulty / "telemetry.parquet", end_h=24.0)["unit-00000"]}
    assert early["od750"].status == "used" and early["turbidity_tank"].status == "redundant"
    assert early["od750"].biomass_loss_if_removed > 0.0  # the turbidity chain alone is less certain
    assert early["od750"].stuck_fraction == pytest.approx(4.0 / 24.0, abs=0.02)
    assert {early["temp_tank"].status, early["temp_tube"].status} == {"disagrees"}  # the 1.5 °C bias
    assert early["ph_tank"].jumps == 1 and early["temp_tank"].jumps == 0 and early["temp_tank"].spike_fraction == 0
    assert 0.2 * 2 / 24 < early["ph_tank"].spike_fraction < 2 * 0.2 * 2 / 24  # ~20 % of 2 h in 24 h
    late = {row.sensor: row for row in report_file(faulty / "telemetry.parquet")["unit-00000"]}
    assert late["ph_tank"].jumps == 1  # the knock, not the lamp switching at 6, 22 and 30 h
    assert all(row.saturated_fraction == 0 for row in late.values())
    assert late["od750"].status == late["turbidity_tank"].status == "disagrees"  # the 0.2 AU/day drift
    result = CliRunner().invoke(app, ["sensors", "report", str(faulty / "telemetry.parquet"), "--to-h", "24"])
    assert result.exit_code == 0, result.output
    assert "turbidity_tank" in result.output and "redundant" in result.output
    result = CliRunner().invoke(app, ["sensors", "report", str(faulty / "telemetry.parquet"), "--unit", "nope"])
    assert result.exit_code == 2 and "not in" in result.output


def test_a_sole_probe_outgrowing_its_culture_is_reported_and_set_aside(outgrowing):
    """od750 alone drifting one noise sd a minute from 24 h (fixture ``outgrowing``): healthy before, then
    "outgrowing", its withheld samples counted as set aside by the chain."""
    early = {row.sensor: row for row in report_file(outgrowing / "telemetry.parquet", end_h=24.0)["unit-00000"]}
    assert early["od750"].status == "used" and early["od750"].flagged_fraction < 0.05
    late = {row.sensor: row for row in report_file(outgrowing / "telemetry.parquet")["unit-00000"]}
    assert late["od750"].status == "outgrowing"
    assert late["od750"].flagged_fraction == pytest.approx(12.0 / 36.0, abs=0.05)  # from ~24.5 h to the end
    assert late["temp_tank"].status == "not in the biomass chain"
    result = CliRunner().invoke(app, ["sensors", "report", str(outgrowing / "telemetry.parquet")])
    assert result.exit_code == 0 and "outgrowing" in result.output, result.output


PH_PAIR = """
name = "{name}"
strain = "chlorella_vulgaris"
days = 6
units = 2
seed = 9
[light]
source = "{light}"
{light_fields}
[sensors]
include = ["od750", "par_surface", "ph_tank", "ph_tube", "temp_tank"]
drift_per_day = {{ph_tank = 0.0, ph_tube = 0.0}}
{faults}
"""
LAMP = 'par_umol = 800\nphotoperiod_h = 16\non_hour = 6'
SUN = "latitude = 36.8\nlongitude = -2.4\ntransmission = 0.8"
PH_TUBE_DRIFT = '[[faults]]\nsensor = "ph_tube"\nkind = "drift"\nstart_h = 48.0\nmagnitude = 0.05'


def _first_dark_drift_h(folder):
    telemetry = pd.read_parquet(folder / "telemetry.parquet")
    firsts = {}
    for unit, rows in telemetry.groupby("unit_id"):
        _, times_h, readings = unit_readings(rows, rows["time"].min())
        flags = drifting_in_the_dark(times_h, readings, "ph_tank", "ph_tube", dark_samples(times_h, readings))
        firsts[unit] = times_h[flags].min() if flags.any() else None
    return firsts


@pytest.mark.parametrize("light", ["lamp", "sun"])
def test_the_two_ph_probes_are_compared_in_the_dark_and_a_drift_of_one_is_found(tmp_path, light):
    """Lamp (16 h a day, harvests) or sun: in the dark tank and tube read one pH, and their difference stays
    within the electrodes' accuracy for six days; a tube probe drifting 0.05 pH a day from 48 h is found in
    the first night after it passes that accuracy, and both probes are reported as disagreeing."""
    fields = LAMP if light == "lamp" else SUN
    clean = simulated(tmp_path / "clean", PH_PAIR.format(name="clean", light=light, light_fields=fields, faults=""))
    assert set(_first_dark_drift_h(clean).values()) == {None}
    drifting = simulated(tmp_path / "drift", PH_PAIR.format(name="drift", light=light, light_fields=fields,
                                                             faults=PH_TUBE_DRIFT))
    for unit, first in _first_dark_drift_h(drifting).items():
        # 0.02 pH of accuracy plus the test's margin is passed about 60 h in; the next dark hours find it.
        assert first is not None and 60.0 < first < 60.0 + 24.0, (unit, first)
    report = report_file(drifting / "telemetry.parquet")
    for rows in report.values():
        status = {row.sensor: row.status for row in rows}
        assert status["ph_tank"] == status["ph_tube"] == "disagrees"
        assert status["temp_tank"] == "not in the biomass chain"


def test_an_outgrowing_probe_is_named_and_its_sound_partner_is_not_blamed():
    """od750 ramping one noise sd a minute beside a steady turbidity probe: the pair disagrees, but the
    photometer moved faster than any culture, so it alone is named (outgrowing); the turbidity probe is used."""
    rng = np.random.default_rng(8)
    times = np.arange(0.0, 20.0, 1.0 / 60.0)
    readings = {"od750": 0.3 + 0.005 * rng.standard_normal(times.size) + 0.3 * np.maximum(times - 10.0, 0.0),
                "turbidity_tank": 90.0 + 2.0 * rng.standard_normal(times.size)}
    status = {row.sensor: row.status for row in sensor_report(times, readings, [], load_strain("chlorella_vulgaris"))}
    assert status == {"od750": "outgrowing", "turbidity_tank": "redundant"}


def test_dark_samples_count_from_the_last_light_or_the_records_start():
    times = np.arange(0.0, 6.0, 0.25)
    lamp_off_at_2h = np.where(times < 2.0, 800.0, 0.0)
    dark = dark_samples(times, {"par_surface": lamp_off_at_2h})
    np.testing.assert_array_equal(dark, times >= 2.0 + 0.75)  # an hour after the last lit sample (1.75 h)
    np.testing.assert_array_equal(dark_samples(times, {"par_surface": np.zeros(times.size)}), times >= 1.0)
    assert not dark_samples(times, {"par_surface": np.full(times.size, 500.0)}).any()
    led = dark_samples(times, {"led_power": np.where(times < 3.0, 0.0, 100.0)})
    np.testing.assert_array_equal(led, (times >= 1.0) & (times < 3.0))
    assert dark_samples(times, {"ph_tank": np.full(times.size, 7.0)}) is None
