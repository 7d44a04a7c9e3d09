"""`algaflow sensors report` on the simulator's faults (fixture ``faulty`` in conftest): the used and the
redundant biomass sensor, a stuck stretch, a biased temperature probe, a drifting OD probe."""

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
    late = {row.sensor: row for row in report_file(faulty / "telemetry.parquet")["unit-00000"]}
    assert late["od750"].status == late["turbidity_tank"].status == "disagrees"  # the 0.2 AU/day drift
    result = CliRunner().invoke(app, ["sensors", "report", str(faulty / "telemetry.parquet"), "--to-h", "24"])
    assert result.exit_code == 0, result.output
    assert "turbidity_tank" in result.output and "redundant" in result.output
    result = CliRunner().invoke(app, ["sensors", "report", str(faulty / "telemetry.parquet"), "--unit", "nope"])
    assert result.exit_code == 2 and "not in" in result.output
