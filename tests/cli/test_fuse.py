"""algaflow fuse on simulated telemetry (against the simulator's truth) and on real logs in ../shared/data."""


import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from algaflow.cli.fuse import fuse_file
from algaflow.cli.main import app
from tests.cli.real_logs import DATA, MIT, mit_telemetry

ESTIMATE_COLUMNS = ["unit_id", "time", "biomass_g_per_l", "biomass_sd", "growth_rate_per_h", "growth_rate_sd",
                    "co2_captured_g", "harvest_ready"]  # fmt: skip


@pytest.fixture(scope="module")
def simulated(tmp_path_factory):
    out = tmp_path_factory.mktemp("sim")
    result = CliRunner().invoke(app, ["simulate", "--out", str(out), "--scenario", "lab_tubular_chlorella",
                                      "--days", "3", "--units", "2", "--seed", "4"])  # fmt: skip
    assert result.exit_code == 0, result.output
    return out


@pytest.mark.parametrize("smooth", [False, True])
def test_fuse_recovers_biomass_and_co2_of_a_simulated_run(simulated, tmp_path, smooth):
    out = tmp_path / "estimates.csv"
    args = ["fuse", str(simulated / "telemetry.parquet"), "--events", str(simulated / "events.parquet"),
            "--out", str(out)] + (["--smooth"] if smooth else [])  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    estimates = pd.read_csv(out, parse_dates=["time"])
    assert list(estimates.columns[:8]) == ESTIMATE_COLUMNS
    assert estimates["harvest_fraction"].between(0.0, 0.9).all()
    assert (estimates["harvest_forecast_h"] >= 0).all()
    truth = pd.read_parquet(simulated / "truth.parquet")
    for unit, rows in estimates.groupby("unit_id"):
        unit_truth = truth[truth["unit_id"] == unit].set_index("time").sort_index()
        at = unit_truth.index.get_indexer(rows["time"], method="nearest")
        true_biomass = unit_truth["biomass_g_per_l"].to_numpy()[at]
        late = (rows["time"] > rows["time"].min() + pd.Timedelta(hours=6)).to_numpy()
        relative = np.abs(rows["biomass_g_per_l"].to_numpy() - true_biomass)[late] / true_biomass[late]
        assert np.median(relative) < 0.03
        captured = unit_truth["co2_captured_g"].to_numpy()[at]
        co2_truth = captured[-1] - captured[0]
        final = rows.iloc[-1]
        assert abs(final["co2_captured_g"] - co2_truth) < max(3 * final["co2_captured_sd"], 0.05 * co2_truth)


def test_fuse_refuses_bad_files_with_a_clear_message(tmp_path):
    bad = tmp_path / "telemetry.csv"
    row = {"unit_id": ["a"], "time": ["2026-01-01T00:00:00Z"], "sensor": ["od999"], "value": [0.1]}
    pd.DataFrame(row).to_csv(bad, index=False)
    with pytest.raises(ValueError, match="1 unknown sensor"):
        fuse_file(bad, tmp_path / "out.csv", strict=True)
    pd.DataFrame({k: v for k, v in row.items() if k != "sensor"}).to_csv(bad, index=False)
    with pytest.raises(ValueError, match="lacks column"):
        fuse_file(bad, tmp_path / "out.csv")
    pd.DataFrame(row | {"sensor": ["ph_tank"], "value": [7.0]}).to_csv(bad, index=False)
    with pytest.raises(ValueError, match="biomass sensor"):
        fuse_file(bad, tmp_path / "out.csv")
    with pytest.raises(ValueError, match=r"\.csv or \.parquet"):
        fuse_file(bad, tmp_path / "out.xlsx")
    result = CliRunner().invoke(app, ["fuse", str(tmp_path / "absent.csv"), "--out", str(tmp_path / "o.csv")])
    assert result.exit_code == 2 and "does not exist" in " ".join(result.output.split())
    pd.DataFrame(row | {"sensor": ["od750"]}).to_csv(bad, index=False)
    events = tmp_path / "events.csv"
    for params, message in (("{fraction: 0.7", "is not JSON"), ("[0.7]", "is not a JSON object")):
        pd.DataFrame({"unit_id": ["a"], "time": ["2026-01-01T00:00:00Z"], "kind": ["harvest"],
                      "params": [params]}).to_csv(events, index=False)  # fmt: skip
        with pytest.raises(ValueError, match=message):
            fuse_file(bad, tmp_path / "out.csv", events)


@pytest.mark.skipif(not MIT.exists(), reason=f"real logs not found at {MIT} (../shared/data absent)")
def test_fuse_on_the_real_cyanobacteria_logs(tmp_path):
    telemetry = mit_telemetry(probes=False)
    path = tmp_path / "telemetry.parquet"
    telemetry.to_parquet(path)
    estimates = fuse_file(path, tmp_path / "estimates.parquet", strain_name="arthrospira_platensis")
    assert set(estimates["unit_id"]) == set(telemetry["unit_id"])
    settled = estimates.groupby("unit_id").cumcount() >= 6
    rate = estimates.loc[settled, "growth_rate_per_h"]
    assert rate.between(-0.05, 0.1).mean() > 0.95  # cyanobacteria: at most ~2.4 per day
    # Against an independent reference: the log-linear slope of the authors' own OD over the first day.
    od_log = pd.read_csv(MIT / "analysis-codes" / "OD_log.txt", parse_dates=["Datetime"])
    hours = (od_log["Datetime"] - od_log["Datetime"].iloc[0]).dt.total_seconds() / 3600
    first_day = (hours > 8) & (hours < 24)
    slope = np.polyfit(hours[first_day], np.log(od_log["OD"][first_day]), 1)[0]
    rows = estimates[estimates["unit_id"] == "05222025_cont_light_400molphoton"].reset_index(drop=True)
    day = (rows["time"] - rows["time"].iloc[0]).dt.total_seconds() / 3600
    window = (day > 8) & (day < 24)
    assert rows.loc[window, "growth_rate_per_h"].mean() == pytest.approx(slope, rel=0.35)
    # Glitches: readings outside the photometer's range are flagged, never used silently.
    implausible = int((~telemetry["value"].between(-0.05, 4.0)).sum())
    assert (estimates["sample_flag"] == "invalid_value").sum() >= implausible
    # Real cultures never outgrow their strain (fusion.growth_limit): no reading set aside as a drift.
    assert not estimates["sample_flag"].isin(["outgrowing", "suspended"]).any()


def test_calibrate_then_fuse_with_the_stored_curve(simulated, tmp_path):
    """A curve fitted from paired dry weights (the truth, as a lab would weigh it) and OD readings is stored
    as a version, used by fuse in place of the strain's slope, and its slope uncertainty widens the band."""
    telemetry = pd.read_parquet(simulated / "telemetry.parquet")
    truth = pd.read_parquet(simulated / "truth.parquet")
    od = telemetry[(telemetry["sensor"] == "od750") & (telemetry["unit_id"] == telemetry["unit_id"].iloc[0])]
    unit_truth = truth[truth["unit_id"] == od["unit_id"].iloc[0]].set_index("time").sort_index()
    picks = od.iloc[:: max(1, len(od) // 10)]
    dry_weight = unit_truth["biomass_g_per_l"].to_numpy()[unit_truth.index.get_indexer(picks["time"], method="nearest")]
    pairs = tmp_path / "pairs.csv"
    pd.DataFrame({"dry_weight_g_per_l": dry_weight, "reading": picks["value"].to_numpy()}).to_csv(pairs, index=False)
    store = tmp_path / "calibrations"
    runner = CliRunner()
    for expected in ("v1", "v2"):
        result = runner.invoke(app, ["calibrate", str(pairs), "--sensor", "od750", "--store", str(store)])
        assert result.exit_code == 0, result.output
        assert (store / f"od750__chlorella_vulgaris.{expected}.json").exists()
    plain = fuse_file(simulated / "telemetry.parquet", tmp_path / "plain.csv", simulated / "events.parquet")
    calibrated = fuse_file(simulated / "telemetry.parquet", tmp_path / "calibrated.csv", simulated / "events.parquet",
                           calibration_paths=[store / "od750__chlorella_vulgaris.v2.json"])  # fmt: skip
    for unit, rows in calibrated.groupby("unit_id"):
        at = truth[truth["unit_id"] == unit].set_index("time").sort_index()
        true_biomass = at["biomass_g_per_l"].to_numpy()[at.index.get_indexer(rows["time"], method="nearest")]
        late = slice(len(rows) // 10, None)
        z = (rows["biomass_g_per_l"].to_numpy() - true_biomass) / rows["biomass_sd"].to_numpy()
        assert np.mean(np.abs(z[late]) < 1.96) > 0.9
    assert (calibrated["biomass_sd"].to_numpy()[100:] > plain["biomass_sd"].to_numpy()[100:]).mean() > 0.99
    result = runner.invoke(app, ["calibrate", str(pairs), "--sensor", "ph_tank", "--store", str(store)])
    assert result.exit_code == 2 and "buffer_ph" in result.output
    result = runner.invoke(app, ["fuse", str(simulated / "telemetry.parquet"), "--out", str(tmp_path / "x.csv"),
                                 "--strain", "nannochloropsis_oceanica", "--calibration",
                                 str(store / "od750__chlorella_vulgaris.v1.json")])  # fmt: skip
    assert result.exit_code == 2 and "fitted for chlorella_vulgaris" in result.output


ALG_FLEX = DATA / "alg-flex_CZLaboratory" / "processed"


@pytest.mark.skipif(not ALG_FLEX.exists(), reason=f"ALG-FLex data not found at {ALG_FLEX} (../shared/data absent)")
def test_fuse_on_the_alg_flex_daily_samples(tmp_path):
    """H. lacustris in a 3.5 L bubble column and flasks, one manual absorbance a day (760 nm read as od750,
    680 nm as od680): a day between samples leaves ln X uncertain, the regime the iterated OD update is for.
    Growth rates stay plausible, and the smoothed net growth over the record equals the log-linear slope of
    the authors' own absorbances (an independent reference)."""
    frames = []
    for name, column, sensor in (("optical_density.csv", "Absorbance (760nm)", "od750"),
                                 ("optical_density_680.csv", "Absorbance (680nm)", "od680")):  # fmt: skip
        table = pd.read_csv(ALG_FLEX / name)
        frames.append(pd.DataFrame({"unit_id": table["origin"] + "_" + sensor, "sensor": sensor,
                                    "time": pd.Timestamp("2025-06-25T13:47Z") + pd.to_timedelta(table["time"], "D"),
                                    "value": table[column]}))  # fmt: skip
    telemetry = pd.concat(frames, ignore_index=True)
    path = tmp_path / "telemetry.csv"
    telemetry.to_csv(path, index=False)
    for smooth in (False, True):
        estimates = fuse_file(path, tmp_path / "estimates.csv", strain_name="chlorella_vulgaris", smooth=smooth)
        assert set(estimates["unit_id"]) == set(telemetry["unit_id"])
        columns = ["biomass_g_per_l", "biomass_sd", "growth_rate_per_h", "growth_rate_sd"]
        assert np.isfinite(estimates[columns].to_numpy()).all()
        assert (estimates["growth_rate_per_h"].abs() * 24 < 1.5).all()  # 1/d; microalgae rarely exceed ~1/d
        assert not estimates["sample_flag"].isin(["outgrowing", "suspended"]).any()
        if not smooth:
            continue
        for unit, rows in estimates.groupby("unit_id"):
            raw = telemetry[telemetry["unit_id"] == unit].sort_values("time")
            days = (raw["time"] - raw["time"].iloc[0]).dt.total_seconds() / 86400
            slope = np.polyfit(days, np.log(raw["value"]), 1)[0]
            net = np.log(rows["biomass_g_per_l"].iloc[-1] / rows["biomass_g_per_l"].iloc[0]) / days.iloc[-1]
            assert net == pytest.approx(slope, abs=0.04), unit


def test_a_dry_weight_row_or_event_moves_the_offline_estimate_as_it_does_live(simulated, tmp_path):
    """A manual dry weight in the telemetry (sensor ``dry_weight``) or in the events (``dry_weight_sample``) is
    a factor on the biomass at the next sample, as in the live pipeline: the estimate moves toward it, and both
    ways of recording it give the same estimates (before the fix fuse dropped the row and nothing moved)."""
    telemetry = pd.read_parquet(simulated / "telemetry.parquet")
    events = pd.read_parquet(simulated / "events.parquet")
    unit = sorted(telemetry["unit_id"].unique())[0]
    plain = fuse_file(simulated / "telemetry.parquet", tmp_path / "plain.csv", simulated / "events.parquet")
    mine = plain[plain["unit_id"] == unit].reset_index(drop=True)
    at = int(np.searchsorted(mine["time"], mine["time"].iloc[0] + pd.Timedelta(hours=48)))
    moment, before = mine["time"].iloc[at], mine.iloc[at]
    sample = before["biomass_g_per_l"] + 10 * before["biomass_sd"]  # far from what the probe says
    row = pd.DataFrame({"unit_id": [unit], "time": [moment], "sensor": ["dry_weight"], "value": [sample]})
    pd.concat([telemetry, row], ignore_index=True).to_parquet(tmp_path / "with_row.parquet")
    by_row = fuse_file(tmp_path / "with_row.parquet", tmp_path / "row.csv", simulated / "events.parquet")
    event = pd.DataFrame({"unit_id": [unit], "time": [moment], "kind": ["dry_weight_sample"],
                          "params": [f'{{"g_per_l": {sample}}}']})  # fmt: skip
    pd.concat([events, event], ignore_index=True).to_parquet(tmp_path / "with_event.parquet")
    by_event = fuse_file(simulated / "telemetry.parquet", tmp_path / "event.csv", tmp_path / "with_event.parquet")
    pd.testing.assert_frame_equal(by_row, by_event)
    after = by_row[by_row["unit_id"] == unit].reset_index(drop=True).iloc[at]
    assert before["biomass_g_per_l"] + 2 * before["biomass_sd"] < after["biomass_g_per_l"] < sample
    others = by_row["unit_id"] != unit
    pd.testing.assert_frame_equal(by_row[others], plain[others])  # the other unit is untouched


def test_rows_fuse_cannot_use_are_counted_by_reason_and_dates_read_as_they_are_written(tmp_path):
    """Day-first dates are read day-first (they were read month-first, and the gaps that made hung the light
    integral); unreadable times and values, unknown sensors and duplicates are counted by reason, reported by the
    CLI, and refused with --strict."""
    from algaflow.cli.table_input import SkippedRows

    minutes = pd.date_range("2026-03-01", periods=600, freq="min", tz="UTC")
    od = 0.2 * np.exp(0.02 * np.arange(600) / 60)
    rows = pd.DataFrame({"unit_id": "a", "time": minutes.strftime("%d/%m/%Y %H:%M"), "sensor": "od750",
                         "value": od.round(5).astype(str)})  # fmt: skip
    broken = pd.DataFrame({"unit_id": "a", "time": ["31/02/2026 10:00", "yesterday", "01/03/2026 00:10",
                                                    "01/03/2026 00:11", "01/03/2026 00:12"],
                           "sensor": ["od750", "od750", "od750", "od999", "od750"],
                           "value": ["0.2", "0.2", "0.2x", "0.3", str(od[12].round(5))]})  # fmt: skip
    path = tmp_path / "telemetry.csv"
    pd.concat([rows, broken], ignore_index=True).to_csv(path, index=False)
    skipped = SkippedRows()
    result = fuse_file(path, tmp_path / "out.csv", skipped=skipped)
    assert skipped.counts == {"unparseable time": 2, "unparseable value": 1, "unknown sensor": 1, "duplicate": 1}
    assert pd.to_datetime(result["time"]).min() == minutes[0] and len(result) == 600  # 1 March, not 3 January
    assert result["time"].is_monotonic_increasing and result["biomass_g_per_l"].notna().all()
    cli = CliRunner().invoke(app, ["fuse", str(path), "--out", str(tmp_path / "cli.csv")])
    assert cli.exit_code == 0 and "5 rows not used" in " ".join(cli.output.split())
    strict = CliRunner().invoke(app, ["fuse", str(path), "--out", str(tmp_path / "cli.csv"), "--strict"])
    assert strict.exit_code == 2 and "unparseable time" in " ".join(strict.output.split())
    ambiguous = pd.DataFrame({"unit_id": "a", "time": ["01/03/2026 00:00", "02/03/2026 00:00"], "sensor": "od750",
                              "value": [0.2, 0.3]})  # fmt: skip
    ambiguous.to_csv(path, index=False)
    unsure = CliRunner().invoke(app, ["fuse", str(path), "--out", str(tmp_path / "cli.csv")])
    assert unsure.exit_code == 2 and "--time-format" in " ".join(unsure.output.split())
    told = CliRunner().invoke(app, ["fuse", str(path), "--out", str(tmp_path / "cli.csv"),
                                    "--time-format", "%d/%m/%Y %H:%M"])  # fmt: skip
    assert told.exit_code == 0, told.output
    assert pd.read_csv(tmp_path / "cli.csv")["time"].iloc[-1].startswith("2026-03-02")
