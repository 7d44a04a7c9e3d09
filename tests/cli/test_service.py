"""`algaflow compact` from the command line: the lake beside the configured SQLite store, clear errors."""

import numpy as np
import pandas as pd
from typer.testing import CliRunner

from algaflow.cli.main import app
from algaflow.store import ReadingBatch, open_store


def test_compact_writes_the_lake_beside_the_store_and_names_bad_input(tmp_path, monkeypatch):
    monkeypatch.setenv("ALGAFLOW_STORE__URL", f"sqlite:///{tmp_path}/data/algaflow.db")
    times = 1_790_000_000_000_000 + np.arange(0, 2 * 86_400, 60, dtype=np.int64) * 1_000_000
    with open_store(tmp_path / "data" / "algaflow.db") as store:
        store.register_unit("u1", {})
        store.write_readings(ReadingBatch(["u1"] * times.size, ["od750"] * times.size, times, np.ones(times.size),
                                          np.zeros(times.size)))  # fmt: skip
    result = CliRunner().invoke(app, ["compact"])
    assert result.exit_code == 0, result.output
    assert "3 partitions written (2,880 readings)" in " ".join(result.output.split())
    assert len(pd.read_parquet(tmp_path / "data" / "lake" / "readings")) == times.size
    result = CliRunner().invoke(app, ["compact", "--units", "u1,ghost"])
    assert result.exit_code == 2 and "ghost" in result.output
    result = CliRunner().invoke(app, ["compact", "--until", "yesterday"])
    assert result.exit_code == 2 and "ISO 8601" in result.output
