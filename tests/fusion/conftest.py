"""Simulated units with sensor faults, shared by the sensor health, sensor information and estimator tests."""

import pytest
from typer.testing import CliRunner

from algaflow.cli.main import app

FAULTS = """
name = "faults"
strain = "chlorella_vulgaris"
days = 1.5
units = 1
seed = 3
[initial]
biomass_g_per_l = 0.3
[sensors]
include = ["od750", "turbidity_tank", "temp_tank", "temp_tube", "ph_tank"]
period_s = {od750 = 60, turbidity_tank = 60}
[[faults]]
sensor = "od750"
kind = "stuck"
start_h = 10.0
end_h = 14.0
[[faults]]
sensor = "od750"
kind = "spikes"
start_h = 16.0
end_h = 18.0
magnitude = 0.3
[[faults]]
sensor = "od750"
kind = "dropout"
start_h = 18.0
end_h = 22.0
magnitude = 0.3
[[faults]]
sensor = "od750"
kind = "drift"
start_h = 24.0
end_h = 36.0
magnitude = 0.2
[[faults]]
sensor = "ph_tank"
kind = "bias"
start_h = 20.0
end_h = 36.0
magnitude = 0.15
[[faults]]
sensor = "ph_tank"
kind = "spikes"
start_h = 6.0
end_h = 8.0
magnitude = 0.2
[[faults]]
sensor = "temp_tube"
kind = "bias"
start_h = 0.0
end_h = 36.0
magnitude = 1.5
"""


# One photometer and nothing else that sees biomass: from 24 h it drifts up 7.2 AU a day (one noise sd a minute),
# faster than any culture grows, for 6 h; the fault then ends, the reading back on the truth.
OUTGROWING = """
name = "outgrowing probe"
strain = "chlorella_vulgaris"
days = 1.5
units = 3
seed = 3
[initial]
biomass_g_per_l = 0.3
[sensors]
include = ["od750", "temp_tank"]
period_s = {od750 = 60}
[[faults]]
sensor = "od750"
kind = "drift"
start_h = 24.0
end_h = 30.0
magnitude = 7.2
"""


def simulated(folder, scenario: str):
    """``algaflow simulate`` of a scenario's TOML text into ``folder`` (made if need be)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "scenario.toml").write_text(scenario)
    result = CliRunner().invoke(app, ["simulate", "--scenario", str(folder / "scenario.toml"), "--out", str(folder)])
    assert result.exit_code == 0, result.output
    return folder


@pytest.fixture(scope="module")
def outgrowing(tmp_path_factory):
    return simulated(tmp_path_factory.mktemp("outgrowing"), OUTGROWING)


@pytest.fixture(scope="module")
def faulty(tmp_path_factory):
    return simulated(tmp_path_factory.mktemp("faults"), FAULTS)
