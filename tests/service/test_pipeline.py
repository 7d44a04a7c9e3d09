"""The live pipeline against the batch estimator it streams, and across a restart."""

import io
import json
from dataclasses import asdict
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from algaflow.catalog import load_strain
from algaflow.catalog.frames import Frame
from algaflow.control.alarms import degas_threshold_mg_per_l
from algaflow.control.decisions import DecisionPolicy
from algaflow.control.harvest import HarvestPolicy
from algaflow.fusion.calibration import fit_biomass_calibration
from algaflow.fusion.estimator import sensor_growth_model
from algaflow.fusion.growth import filter_growth
from algaflow.service.calibrations import load_calibration, save_calibration
from algaflow.service.config import PipelineSettings
from algaflow.service.pipeline import LivePipeline
from algaflow.service.pipeline_state import STATE_NAME
from algaflow.store import ReadingBatch, StoredEvent, open_store
from algaflow.store.base import IngestBatch, to_time_us

STRAIN = load_strain("chlorella_vulgaris")
T0 = datetime.now(UTC) - timedelta(days=6)


def culture_frames(unit: str, steps: int = 1200, seed: int = 0) -> list[Frame]:
    """Logistic growth read by od750 every 6 min, a 70 % harvest at step 700, DO rising past the degas
    threshold from step 900; DO and temperature read with their catalog noise."""
    rng = np.random.default_rng(seed)
    hours = np.arange(steps) * 0.1
    biomass = 3.0 / (1.0 + 29.0 * np.exp(-0.06 * hours))
    biomass[700:] *= 0.3
    od = biomass * STRAIN.od750_per_g_per_l + rng.normal(0, 0.005, steps)
    threshold = degas_threshold_mg_per_l(STRAIN, 0.2)
    do = np.where(np.arange(steps) >= 900, threshold * 1.2, threshold * 0.5) + rng.normal(0, 0.1, steps)
    temperature = STRAIN.t_opt_c + rng.normal(0, 0.05, steps)
    return [Frame(unit_id=unit, time=T0 + timedelta(hours=float(h)), seq=k,
                  readings={"od750": float(od[k]), "do_tank": float(do[k]), "temp_tank": float(temperature[k])},
                  events=[{"kind": "harvest", "params": {"fraction": 0.7}}] if k == 700 else [])
            for k, h in enumerate(hours)]  # fmt: skip


@pytest.fixture
def store(store_url):
    with open_store(store_url) as opened:
        opened.register_unit("r1", {"strain": "chlorella_vulgaris", "volume_l": 80.0, "sensors": ["od750"]})
        opened.register_unit("r2", {"strain": "chlorella_vulgaris", "volume_l": 80.0})
        yield opened


def feed(pipeline: LivePipeline, frames: list[Frame], chunk: int = 37) -> list:
    decisions = []
    for first in range(0, len(frames), chunk):
        batch = IngestBatch.from_frames(frames[first:first + chunk])
        decisions += pipeline.process(batch.readings, batch.events)
    return decisions


def test_streamed_estimates_equal_the_batch_filter_and_decisions_follow_the_thresholds(store):
    frames = culture_frames("r1")
    decisions = feed(LivePipeline(store), frames)
    estimates = store.estimates("r1")
    assert len(estimates) == len(frames)
    hours = np.array([(f.time - T0).total_seconds() / 3600 for f in frames])
    od = np.array([f.readings["od750"] for f in frames])
    dilution = np.zeros(len(frames))
    dilution[700] = 0.7
    batch = filter_growth(hours, od, dilution, sensor_growth_model("od750", STRAIN), keep_priors=False)
    np.testing.assert_allclose(estimates.growth_rate_per_h, batch.growth_rate_per_h[0], rtol=1e-7, atol=1e-12)
    np.testing.assert_allclose(estimates.biomass_g_per_l, batch.biomass_g_per_l[0], rtol=1e-7)
    kinds = [(d.kind, round((d.time_us / 1e6 - T0.timestamp()) / 360)) for d in decisions]
    assert ("degas_on", 902) in kinds  # the third reading above: the median of five (control.decisions)
    assert not any(kind.startswith(("temperature", "sensor")) for kind, _ in kinds)
    # the harvest restarts the advice: no verdict before a light cycle after its transient
    assert all(step >= 700 + 20 + 240 for kind, step in kinds if kind == "harvest_ready")
    # CO2 keeps what the harvest took away: it does not fall by 70 % at the harvest
    co2 = estimates.co2_captured_g.to_numpy()
    assert co2[710] > 0.9 * co2[690] > 0
    assert store.decisions("r1").kind.tolist() == [d.kind for d in decisions]


def test_a_stored_calibration_curve_is_the_chains_factor_and_its_uncertainty_joins_the_biomass_sd(store, tmp_path):
    """r1's od750 has a fitted curve (reading = 0.02 + 1.6 X) in the calibrations folder: the chain uses it
    (what the batch filter gives with that factor), and the curve's slope uncertainty widens the biomass sd."""
    rng = np.random.default_rng(8)
    dry_weight = np.linspace(0.05, 2.0, 12)
    curve = fit_biomass_calibration(dry_weight, 0.02 + 1.6 * dry_weight + rng.normal(0, 0.01, 12), "od750",
                                    "chlorella_vulgaris")  # fmt: skip
    save_calibration(curve, tmp_path / "calibrations")
    frames = culture_frames("r1", steps=300, seed=6)
    pipeline = LivePipeline(store, calibrations=tmp_path / "calibrations")
    feed(pipeline, frames)
    assert pipeline.calibration_in_use("r1").coefficients == load_calibration(
        tmp_path / "calibrations" / "od750__chlorella_vulgaris.v1.json").coefficients
    assert pipeline.calibration_in_use("r2") is None
    hours = np.array([(f.time - T0).total_seconds() / 3600 for f in frames])
    od = np.array([f.readings["od750"] for f in frames])
    batch = filter_growth(hours, od, None, sensor_growth_model("od750", STRAIN, calibration=curve), keep_priors=False)
    estimates = store.estimates("r1")
    np.testing.assert_allclose(estimates.biomass_g_per_l, batch.biomass_g_per_l[0], rtol=1e-7)
    expected_sd = np.sqrt(batch.biomass_sd[0] ** 2 + curve.biomass_variance(batch.biomass_g_per_l[0]))
    np.testing.assert_allclose(estimates.biomass_sd, expected_sd, rtol=1e-7)
    assert np.all(estimates.biomass_sd > batch.biomass_sd[0])


def test_dry_weights_prompt_or_late_give_what_the_batch_filter_gives_with_them(store):
    """A dry weight recorded as it is taken is a factor at the next sample; one recorded hours later (as lab
    results come) makes r1's chain replay its stored record with it. Either way the stored estimates are the
    batch filter's with the dry weights placed on the first samples at or after their times."""
    frames = culture_frames("r1", steps=900, seed=7)
    store.ingest(frames[:600])
    pipeline = LivePipeline(store)
    feed(pipeline, frames[:600])
    hours = np.array([(f.time - T0).total_seconds() / 3600 for f in frames])
    od = np.array([f.readings["od750"] for f in frames])
    dilution = np.zeros(len(frames))
    dilution[700] = 0.7

    def dry_weight_event(hour: float, grams: float) -> StoredEvent:
        return StoredEvent("r1", to_time_us(T0 + timedelta(hours=hour)), "dry_weight_sample", {"g_per_l": grams})

    late = dry_weight_event(20.05, 0.33)  # sampled at 20.05 h (truth 0.31 g/L), entered when the chain is at 59.9 h
    store.write_events([late])
    pipeline.process(ReadingBatch([], [], [], [], []), [late])
    prompt = dry_weight_event(60.02, 1.70)  # after the last sample processed (truth 1.67): waits for the next one
    store.write_events([prompt])
    pipeline.process(ReadingBatch([], [], [], [], []), [prompt])
    store.ingest(frames[600:])
    feed(pipeline, frames[600:])
    dry_weight = np.full(len(frames), np.nan)
    dry_weight[np.searchsorted(hours, 20.05)] = 0.33
    dry_weight[np.searchsorted(hours, 60.02)] = 1.70
    batch = filter_growth(hours, od, dilution, sensor_growth_model("od750", STRAIN), keep_priors=False,
                          dry_weight=dry_weight, dry_weight_sd=0.02)  # fmt: skip
    without = filter_growth(hours, od, dilution, sensor_growth_model("od750", STRAIN), keep_priors=False)
    estimates = store.estimates("r1")
    assert len(estimates) == len(frames)
    np.testing.assert_allclose(estimates.biomass_g_per_l, batch.biomass_g_per_l[0], rtol=1e-7)
    np.testing.assert_allclose(estimates.growth_rate_per_h, batch.growth_rate_per_h[0], rtol=1e-7, atol=1e-12)
    k = np.searchsorted(hours, 20.05)
    assert abs(estimates.biomass_g_per_l[k] - without.biomass_g_per_l[0, k]) > 1e-4  # the late sample counted


def test_a_dry_weight_reading_counts_as_the_event_does_on_time_or_late(store):
    """A ``dry_weight`` reading in a frame (a lab sensor, as ``algaflow fuse`` reads it) is the same factor as a
    ``dry_weight_sample`` event: one at its time, and one sent hours later in a frame of its own."""
    frames = culture_frames("r1", steps=600, seed=3)
    hours = np.array([(f.time - T0).total_seconds() / 3600 for f in frames])
    reading = Frame(unit_id="r1", time=T0 + timedelta(hours=20.05), seq=10_000, readings={"dry_weight": 0.33})
    on_time = sorted([*frames, reading], key=lambda f: f.time)
    store.ingest(IngestBatch.from_frames(on_time))
    feed(LivePipeline(store), on_time)
    with_reading = store.estimates("r1")
    late = LivePipeline(store)  # the same record without the reading (its estimates replace the stored ones),
    feed(late, frames)  # then the reading alone, hours late
    feed(late, [reading])
    again = store.estimates("r1")
    dry_weight = np.full(len(frames), np.nan)
    dry_weight[np.searchsorted(hours, 20.05)] = 0.33
    batch = filter_growth(hours, np.array([f.readings["od750"] for f in frames]), np.zeros(len(frames)),
                          sensor_growth_model("od750", STRAIN), keep_priors=False, dry_weight=dry_weight,
                          dry_weight_sd=0.02)  # fmt: skip
    without = filter_growth(hours, np.array([f.readings["od750"] for f in frames]), np.zeros(len(frames)),
                            sensor_growth_model("od750", STRAIN), keep_priors=False)  # fmt: skip
    assert np.abs(batch.biomass_g_per_l - without.biomass_g_per_l).max() > 1e-3  # the dry weight matters
    for estimates in (with_reading, again):
        assert len(estimates) == len(frames)
        np.testing.assert_allclose(estimates.biomass_g_per_l, batch.biomass_g_per_l[0], rtol=1e-7)


def test_a_restart_resumes_from_checkpoint_and_replay_as_if_it_never_stopped(store, tmp_path):
    frames = culture_frames("r2", steps=600, seed=3)
    settings = PipelineSettings(checkpoint_every_s=1e9)  # checkpoint only when told
    first = LivePipeline(store, settings)
    feed(first, frames[:250])
    first.checkpoint()
    for frame in frames[250:400]:  # stored but processed by a pipeline that then dies without a checkpoint
        store.ingest([frame])
    feed(first, frames[250:400])
    expected = store.estimates("r2").copy()
    resumed = LivePipeline(store, settings)
    replayed = resumed.restore()
    assert replayed == 150 * 3  # od750, do_tank, temp_tank of each frame after the checkpoint
    got = store.estimates("r2")
    np.testing.assert_allclose(got.biomass_g_per_l, expected.biomass_g_per_l, rtol=1e-12)
    np.testing.assert_allclose(got.growth_rate_per_h, expected.growth_rate_per_h, rtol=1e-12)
    feed(resumed, frames[:400])  # resent frames are not processed twice
    assert len(store.estimates("r2")) == 400


def test_a_checkpoint_of_an_older_layout_is_set_aside_and_every_stored_reading_replayed(store, caplog):
    """A checkpoint written by a release whose chain ran on ln X (layout 1, no "format") cannot be resumed:
    the pipeline says so and rebuilds its state from the store, giving what an uninterrupted pipeline gave."""
    frames = culture_frames("r2", steps=400, seed=4)
    store.ingest(frames)
    first = LivePipeline(store, PipelineSettings(checkpoint_every_s=1e9))
    feed(first, frames)
    first.checkpoint()
    expected = store.estimates("r2").copy()
    with np.load(io.BytesIO(store.load_state(STATE_NAME))) as saved:
        older = {name: saved[name] for name in saved.files if name != "format"}
    buffer = io.BytesIO()
    np.savez(buffer, **older)
    store.save_state(STATE_NAME, buffer.getvalue())
    resumed = LivePipeline(store, PipelineSettings(checkpoint_every_s=1e9))
    with caplog.at_level("WARNING", logger="algaflow.pipeline"):
        assert resumed.restore() == 400 * 3
    assert "layout 1" in caplog.text
    got = store.estimates("r2")
    np.testing.assert_allclose(got.biomass_g_per_l, expected.biomass_g_per_l, rtol=1e-12)
    np.testing.assert_allclose(got.growth_rate_per_h, expected.growth_rate_per_h, rtol=1e-12)


def test_batch_size_changes_nothing(tmp_path):
    """Frames one at a time or 500 at once (arrays along time per unit) give the same estimates and decisions,
    with DO, temperature and harvest flags switching on and off inside a batch."""
    frames = culture_frames("r1", steps=1200, seed=5)
    hours = np.arange(1200) * 0.1
    regrowth = 3.0 / (1.0 + (3.0 / (0.3 * frames[699].readings["od750"] / STRAIN.od750_per_g_per_l) - 1.0)
                      * np.exp(-0.06 * (hours - 70.0)))  # after the harvest the culture grows again  # fmt: skip
    noise = np.random.default_rng(6).normal(0, 0.005, 1200)
    hot = set(range(300, 420)) | set(range(460, 470))
    frames = [f.model_copy(update={"readings": {
        **f.readings, "temp_tube": STRAIN.t_opt_c + (13.0 if k in hot else 0.0),
        **({"od750": float(regrowth[k] * STRAIN.od750_per_g_per_l + noise[k])} if k >= 700 else {})}})
        for k, f in enumerate(frames)]  # fmt: skip
    frames[1000] = frames[1000].model_copy(update={"readings": {"od750": frames[1000].readings["od750"]}})
    results = []
    for chunk in (1, 500):
        with open_store(tmp_path / f"chunk{chunk}.db") as store:
            store.register_unit("r1", {"strain": "chlorella_vulgaris", "volume_l": 80.0})
            pipeline = LivePipeline(store)
            pipeline.policy = DecisionPolicy(harvest=HarvestPolicy(growth_threshold_per_h=0.03, probability_on=0.6,
                                                                   probability_off=0.3), day_h=12.0)  # fmt: skip
            decisions = feed(pipeline, frames, chunk=chunk)
            results.append(([(d.time_us, d.kind, d.reason) for d in decisions], store.estimates("r1")))
    (one, one_estimates), (many, many_estimates) = results
    kinds = {kind for _, kind, _ in one}
    assert {"temperature_alarm", "temperature_ok", "degas_on", "harvest_ready", "harvest_clear"} <= kinds
    assert one == many
    pd.testing.assert_frame_equal(one_estimates, many_estimates, rtol=1e-12)


def test_a_late_dry_weight_goes_back_only_to_the_saved_point_before_it_and_one_beyond_the_lag_is_quarantined(
        store, caplog):  # fmt: skip
    """The chain re-filters from the last saved point (one every 4 h) before the sample (not from the unit's start), and
    a sample older than ``late_sample_lag_h`` is quarantined with the reason, changing no estimate."""
    frames = culture_frames("r1", steps=900, seed=8)  # 6-min samples: 90 h
    store.ingest(frames)
    pipeline = LivePipeline(store, PipelineSettings(late_sample_lag_h=24.0))
    feed(pipeline, frames)
    before = store.estimates("r1").copy()
    recent = StoredEvent("r1", to_time_us(T0 + timedelta(hours=80.03)), "dry_weight_sample", {"g_per_l": 2.0})
    store.write_events([recent])
    with caplog.at_level("INFO", logger="algaflow.pipeline"):
        pipeline.process(ReadingBatch([], [], [], [], []), [recent])
    went_back = float(caplog.text.split("went back ")[1].split(" h")[0])
    assert 89.9 - 80.1 <= went_back <= 89.9 - 76.0  # from the saved point within the 4 hours before 80.03 h
    after = store.estimates("r1")
    k = int(np.searchsorted(after.time_us.to_numpy(), recent.time_us))
    np.testing.assert_array_equal(after.biomass_g_per_l[:k], before.biomass_g_per_l[:k])  # nothing before it moved
    assert abs(after.biomass_g_per_l[k] - before.biomass_g_per_l[k]) > 1e-3
    old = StoredEvent("r1", to_time_us(T0 + timedelta(hours=30.0)), "dry_weight_sample", {"g_per_l": 0.5})
    store.write_events([old])
    pipeline.process(ReadingBatch([], [], [], [], []), [old])
    np.testing.assert_array_equal(store.estimates("r1").biomass_g_per_l, after.biomass_g_per_l)
    [entry] = [q for q in pipeline.quarantine.items() if q.kind == "dry_weight_sample"]
    assert "late_sample_lag_h = 24 h" in entry.reason


def test_the_checkpoint_keeps_the_saved_points_so_a_late_dry_weight_after_a_restart_goes_back_as_before(
        store, tmp_path):  # fmt: skip
    """Saved points travel in the checkpoint (as arrays): a late dry weight after a restart gives what it gives
    to a pipeline that never stopped."""
    frames = culture_frames("r1", steps=600, seed=9)
    store.ingest(frames)
    settings = PipelineSettings(checkpoint_every_s=1e9)
    running = LivePipeline(store, settings)
    feed(running, frames)
    running.checkpoint()
    resumed = LivePipeline(store, settings)
    resumed.restore()
    # (as JSON: a saved point has NaN where the unit has no first-pass chain, and NaN != NaN)
    assert same_json(resumed.tracks["r1"].snapshots, running.tracks["r1"].snapshots)
    assert len(running.tracks["r1"].snapshots) >= 10
    late = StoredEvent("r1", to_time_us(T0 + timedelta(hours=50.01)), "dry_weight_sample", {"g_per_l": 1.2})
    store.write_events([late])
    before = resumed.chains.unit_state(resumed.tracks["r1"].index)
    running.process(ReadingBatch([], [], [], [], []), [late])
    resumed.process(ReadingBatch([], [], [], [], []), [late])
    after = resumed.chains.unit_state(resumed.tracks["r1"].index)
    assert after != before  # the resumed chain took the sample in
    assert after == running.chains.unit_state(running.tracks["r1"].index)
    assert same_json(asdict(resumed.tracks["r1"]), asdict(running.tracks["r1"]))


def same_json(first: object, second: object) -> bool:
    return json.dumps(first, sort_keys=True) == json.dumps(second, sort_keys=True)


def test_a_pipeline_that_has_seen_nothing_checkpoints_and_restores(store):
    """No unit, no saved point yet: the checkpoint is written and read back (it once failed on empty arrays)."""
    LivePipeline(store).checkpoint()
    resumed = LivePipeline(store)
    assert resumed.restore() == 0
    assert resumed.tracks == {} and resumed.decisions.units == 0
