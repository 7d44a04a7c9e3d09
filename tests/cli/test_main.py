import pandas as pd
from typer.testing import CliRunner

from algaflow.cli.main import app


def test_simulate_writes_the_three_files_and_a_plot(tmp_path):
    result = CliRunner().invoke(app, ["simulate", "--days", "2", "--units", "2", "--seed", "1", "--out",
                                      str(tmp_path), "--plot"])  # fmt: skip
    assert result.exit_code == 0, result.output
    for name in ("telemetry.parquet", "events.parquet", "truth.parquet", "simulation.png"):
        assert (tmp_path / name).stat().st_size > 0
    truth = pd.read_parquet(tmp_path / "truth.parquet")
    assert truth.unit_id.nunique() == 2
    assert (tmp_path / "simulation.png").read_bytes()[:4] == b"\x89PNG"


def test_unknown_strain_is_a_clear_error(tmp_path):
    result = CliRunner().invoke(app, ["simulate", "--strain", "kelp", "--out", str(tmp_path / "x")])
    assert result.exit_code == 2
    assert "unknown strain 'kelp'" in result.output


def test_help_lists_commands():
    result = CliRunner().invoke(app, ["--help"])
    assert "simulate" in result.output and "demo" in result.output
