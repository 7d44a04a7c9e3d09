"""``algaflow sensors report`` on the real MIT logs in ../shared/data: the known glitches are the ones flagged."""

import pytest
from typer.testing import CliRunner

from algaflow.cli.main import app
from algaflow.cli.sensors import report_file
from tests.cli.real_logs import MIT, mit_telemetry


@pytest.mark.skipif(not MIT.exists(), reason=f"real logs not found at {MIT} (../shared/data absent)")
def test_the_report_flags_the_real_logs_glitches_and_nothing_else(tmp_path):
    """The hourly colour-sensor OD is complete but for one 3.7 h gap (05152025) and healthy; the DO probe of
    04-15-2025, read every second, sits at 0 and then pinned at 30.01 mg/L; the pH logs repeat 9.57 and 9.52
    for days (stuck), all at the ends of their records (saturated)."""
    telemetry = mit_telemetry()
    path = tmp_path / "mit.parquet"
    telemetry.to_parquet(path)
    reports = {unit: {row.sensor: row for row in rows}
               for unit, rows in report_file(path, strain_name="arthrospira_platensis").items()}  # fmt: skip
    assert len(reports) == 6
    for unit, rows in reports.items():
        od = rows["od680"]
        assert od.status == "used" and od.spike_fraction == 0 and od.jumps == 0 and od.saturated_fraction == 0
        # Missing against the log's own hourly period, not the catalog's 10 min: the one gap is ~3 samples.
        assert od.missing_fraction == pytest.approx(0.02 if unit == "05152025_cont_light_150molphoton" else 0.0,
                                                    abs=0.011)  # fmt: skip
    do = reports["04-15-2025_culture"]["do_tank"]
    assert do.status == "stuck" and do.stuck_fraction > 0.9 and do.saturated_fraction > 0.9
    for unit in ("11-22-2025_culture", "12-03-2024_culture"):
        assert reports[unit]["ph_tank"].status == "stuck" and reports[unit]["ph_tank"].missing_fraction < 0.01
    result = CliRunner().invoke(app, ["sensors", "report", str(path), "--strain", "arthrospira_platensis",
                                      "--unit", "04-15-2025_culture"])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "stuck" in result.output and "do_tank" in result.output
