import subprocess
import sys

import pytest

from algaflow.sim.scenario import ScenarioError, load_scenario, parse_scenario

BAD = [
    ({"strain": "chlorella_vulgarissima"}, "strain: unknown strain 'chlorella_vulgarissima'; the library has"),
    ({"reactor": {"volume_tank_l": -5}}, "reactor.volume_tank_l: Input should be greater than 0"),
    ({"strain_overrides": {"t_min_c": 33.0}}, "t_min_c < t_opt_c < t_max_c"),
    ({"sensors": {"include": ["ph_tank", "ph_probe"]}}, "sensors.include: unknown sensor 'ph_probe'; the catalog has"),
    ({"faults": [{"sensor": "od999", "kind": "drift"}]}, "faults.0.sensor: unknown sensor 'od999'"),
    ({"alarms": {"do_high_mg_per_l": 10, "do_low_mg_per_l": 12}}, "do_low_mg_per_l must be below"),
    ({"reactor": {"geometry": "sphere"}}, "reactor.geometry"),
    ({"reactor": {"volum_tank_l": 5}}, "reactor.volum_tank_l: Extra inputs are not permitted"),
]


@pytest.mark.parametrize(("table", "message"), BAD)
def test_invalid_scenarios_fail_with_one_clear_message(table, message):
    with pytest.raises(ScenarioError) as error:
        parse_scenario(table, "bad.toml")
    assert message in str(error.value)
    assert str(error.value).startswith("bad.toml: ")


def test_cli_reports_user_errors_without_traceback(tmp_path):
    scenario = tmp_path / "bad.toml"
    scenario.write_text('strain = "chlorella_vulgaris"\n[reactor]\nvolume_tank_l = -5\n')
    run = subprocess.run([sys.executable, "-m", "algaflow.cli.main", "simulate", "--scenario", str(scenario),
                          "--out", str(tmp_path / "out")], capture_output=True, text=True)  # fmt: skip
    assert run.returncode == 2
    assert "reactor.volume_tank_l" in run.stderr and "greater than 0" in run.stderr
    assert "Traceback" not in run.stderr + run.stdout
    assert not (tmp_path / "out").exists()


def test_shipped_scenarios_are_valid():
    from algaflow.cli.main import shipped_scenarios

    examples = shipped_scenarios()
    assert len(examples) >= 4
    for path in examples.values():
        load_scenario(path)
