"""`algaflow sensors report` on the simulator's faults (fixture ``faulty`` in conftest): the used and the
redundant biomass sensor, a stuck stretch, a biased temperature probe, a drifting OD probe, a knocked pH
electrode (a level jump at 20 h) with a burst of bubble spikes (6–8 h); and a sole photometer that moves faster
than any culture (fixture ``outgrowing``)."""

import pytest
from typer.testing import CliRunner

from algaflow.cli.main import app
from algaflow.cli.sensors import report_file


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
