"""One conformance suite over every store backend (DESIGN.md §6), through the ``store_url`` fixture (SQLite in a
temporary file, PostgreSQL on 127.0.0.1:5432 in a schema of its own). Downsampled answers are checked against
pandas on the raw readings."""

import threading
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from algaflow.catalog.frames import OUT_OF_RANGE, Frame
from algaflow.store import ReadingBatch, StoredEvent, UnknownUnitError, events_of_frames, open_store
from algaflow.store.base import DAY_US, MINUTE_US, to_time_us

T0 = datetime(2026, 10, 31, 23, 0, tzinfo=UTC)  # the data cross a month boundary (a new partition)


@pytest.fixture
def store(store_url):
    with open_store(store_url) as opened:
        opened.register_unit("r1", {"strain": "chlorella_vulgaris", "site": "lab"})
        opened.register_unit("r2", {"strain": "spirulina"})
        yield opened


def random_batch(rng, unit="r1", hours=3.0, sensors=("od750", "temp_tank", "ph_tank")):
    """Irregular samples (every 5–25 s) of a few sensors, some out of the plausible range."""
    parts = []
    for sensor in sensors:
        steps = rng.uniform(5e6, 25e6, int(hours * 3600 / 5)).astype(np.int64)
        times = to_time_us(T0) + np.cumsum(steps)
        times = times[times < to_time_us(T0) + int(hours * 3600e6)]
        values = rng.normal(7.0, 1.0, times.size)
        quality = (rng.random(times.size) < 0.03).astype(np.int8) * OUT_OF_RANGE
        parts.append(pd.DataFrame({"unit_id": unit, "sensor": sensor, "time_us": times, "value": values,
                                   "quality": quality}))  # fmt: skip
    table = pd.concat(parts, ignore_index=True)
    return ReadingBatch(table.unit_id.to_numpy(), table.sensor.to_numpy(), table.time_us.to_numpy(),
                        table.value.to_numpy(), table.quality.to_numpy()), table  # fmt: skip


def test_units_are_registered_and_their_metadata_replaced(store):
    assert store.units() == {"r1": {"strain": "chlorella_vulgaris", "site": "lab"}, "r2": {"strain": "spirulina"}}
    store.register_unit("r2", {"strain": "spirulina", "site": "almeria"})
    assert store.units()["r2"] == {"strain": "spirulina", "site": "almeria"}
    assert store.unit("r2") == {"strain": "spirulina", "site": "almeria"} and store.unit("ghost") is None


def test_reading_days_count_every_reading_per_utc_day_like_pandas(store):
    rng = np.random.default_rng(11)
    batch, table = random_batch(rng, hours=30.0)  # 23:00 on one day to 05:00 two days later
    store.write_readings(batch)
    store.write_readings(batch)  # resent: counted once
    days = store.reading_days("r1")
    expected = table.groupby(table.time_us // DAY_US * DAY_US).size()  # times after 1970: floor division
    assert days.day_us.tolist() == expected.index.tolist() and days["count"].tolist() == expected.tolist()
    assert len(days) == 3 and store.reading_days("r2").empty
    window = store.reading_days("r1", start_us=int(expected.index[1]), end_us=int(expected.index[2]))
    assert window.day_us.tolist() == [expected.index[1]] and window["count"].tolist() == [expected.iloc[1]]


def test_frames_are_stored_with_their_quality_and_resending_is_harmless(store):
    frames = [Frame(unit_id="r1", time=T0 + timedelta(seconds=10 * k), seq=k,
                    readings={"ph_tank": 23.0 if k == 3 else 7.5, "od750": 0.1 * k},
                    events=[{"kind": "harvest", "params": {"fraction": 0.7}}] if k == 5 else [])
              for k in range(10)]  # fmt: skip
    batch = ReadingBatch.from_frames(frames)
    assert store.write_readings(batch) == 20
    stored = store.readings("r1")
    assert len(stored) == 20 and list(stored.columns) == ["time_us", "sensor", "value", "quality"]
    ph = stored[stored.sensor == "ph_tank"]
    assert ph.value.tolist()[3] == 23.0 and ph.quality.tolist() == [0, 0, 0, OUT_OF_RANGE] + [0] * 6
    minute = store.readings("r1", every_s=60)
    assert store.write_readings(batch) == 0  # the agent resent what was not acknowledged
    pd.testing.assert_frame_equal(store.readings("r1"), stored)
    pd.testing.assert_frame_equal(store.readings("r1", every_s=60), minute)  # rollups counted once
    assert store.write_events(events_of_frames(frames)) == 1
    assert store.write_events(events_of_frames(frames)) == 0
    events = store.events("r1")
    assert events.kind.tolist() == ["harvest"] and events.params[0] == {"fraction": 0.7}
    assert events.time_us[0] == to_time_us(T0 + timedelta(seconds=50))


def test_a_batch_naming_an_unregistered_unit_stores_nothing(store):
    batch = ReadingBatch(["r1", "ghost"], ["od750", "od750"], [1, 2], [0.1, 0.2], [0, 0])
    with pytest.raises(UnknownUnitError, match="ghost"):
        store.write_readings(batch)
    assert len(store.readings("r1")) == 0
    with pytest.raises(UnknownUnitError):
        store.readings("ghost")
    with pytest.raises(ValueError, match="unknown sensor"):
        store.readings("r1", sensors=["od999"])
    with pytest.raises(ValueError, match="every_s"):
        store.readings("r1", every_s=0)


@pytest.mark.parametrize("every_s", [60, 300, 3600, 45])
def test_downsampling_equals_pandas_on_the_good_raw_readings(store, every_s):
    rng = np.random.default_rng(every_s)
    batch, table = random_batch(rng)
    # in two halves with an overlap: rollups must merge partial minutes and ignore the resent rows
    half = len(batch) // 2
    first = ReadingBatch(*(getattr(batch, c)[: half + 100] for c in ("unit_id", "sensor", "time_us", "value",
                                                                       "quality")))  # fmt: skip
    assert store.write_readings(first) == half + 100
    assert store.write_readings(batch) == len(batch) - half - 100
    start, end = to_time_us(T0 + timedelta(minutes=20)), to_time_us(T0 + timedelta(minutes=150))
    got = store.readings("r1", ["od750", "ph_tank"], start, end, every_s=every_s)
    bucket = every_s * 1_000_000
    lower = start - start % MINUTE_US if bucket % MINUTE_US == 0 else start
    good = table[(table.quality == 0) & table.sensor.isin(["od750", "ph_tank"]) & (table.time_us >= lower)
                 & (table.time_us < end)].copy()  # fmt: skip
    good["bucket"] = good.time_us - good.time_us % bucket
    expected = good.groupby(["sensor", "bucket"]).value.agg(["mean", "min", "max", "count"]).reset_index()
    assert got.sensor.tolist() == expected.sensor.tolist()
    np.testing.assert_array_equal(got.time_us.to_numpy(), expected.bucket.to_numpy())
    np.testing.assert_array_equal(got["count"].to_numpy(), expected["count"].to_numpy())
    for column in ("mean", "min", "max"):
        np.testing.assert_allclose(got[column].to_numpy(), expected[column].to_numpy(), rtol=1e-12)


def test_time_ranges_are_half_open_and_units_separate(store):
    rng = np.random.default_rng(5)
    batch, table = random_batch(rng, sensors=("od750",))
    store.write_readings(batch)
    other, _ = random_batch(rng, unit="r2", sensors=("od750",))
    store.write_readings(other)
    times = np.sort(table.time_us.to_numpy())
    got = store.readings("r1", ["od750"], int(times[10]), int(times[20]))
    np.testing.assert_array_equal(got.time_us.to_numpy(), times[10:20])
    assert len(store.readings("r1")) == len(table) and len(store.readings("r2")) == len(other)


def test_writes_are_durable_across_a_reopen_and_concurrent_writers_all_land(store_url):
    with open_store(store_url) as store:
        store.register_unit("r1", {})
        threads = [threading.Thread(target=store.write_readings,
                                    args=(ReadingBatch(["r1"] * 100, ["temp_tank"] * 100,
                                                       np.arange(100) + 1000 * k, np.full(100, 20.0 + k),
                                                       np.zeros(100)),)) for k in range(8)]  # fmt: skip
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    with open_store(store_url) as reopened:
        stored = reopened.readings("r1")
        assert len(stored) == 800
        assert sorted(set(stored.value)) == [20.0 + k for k in range(8)]
        assert reopened.write_events([StoredEvent("r1", 5, "note", {"text": "after a reopen"})]) == 1


def test_an_unknown_backend_is_named():
    with pytest.raises(ValueError, match="backends: sqlite, postgresql"):
        open_store("mongodb://localhost/x")


def _frames(unit, seqs, readings=None):
    return [Frame(unit_id=unit, time=T0 + timedelta(seconds=10 * k), seq=k,
                  readings=readings or {"od750": 0.1 + 0.01 * k, "temp_tank": 25.0},
                  events=[{"kind": "dilution", "params": {"fraction": 0.2}}] if k == 2 else [])
            for k in seqs]  # fmt: skip


def test_ingest_is_whole_idempotent_and_logs_frames_in_arrival_order(store):
    got = store.ingest(_frames("r1", [0, 1, 2]) + _frames("r2", [0]))
    assert (got.frames, got.readings, got.events) == (4, 8, 1)
    again = store.ingest(_frames("r1", [1, 2, 3]))  # two resent, one new
    assert (again.frames, again.readings, again.events) == (1, 2, 0)
    assert store.frame_log("r1").seq.tolist() == [0, 1, 2, 3]
    assert store.frame_log("r2").seq.tolist() == [0]
    assert store.last_frame("r1") == (3, store.frame_log("r1").time_us.iloc[-1]) and store.last_frame("r3") is None
    assert len(store.readings("r1")) == 8 and store.events("r1").kind.tolist() == ["dilution"]
    with pytest.raises(UnknownUnitError, match="ghost"):
        store.ingest(_frames("r1", [4]) + _frames("ghost", [0]))
    assert store.frame_log("r1").seq.tolist() == [0, 1, 2, 3]  # the good frame of a refused batch is not kept
    assert len(store.readings("r1")) == 8
    assert store.ingest([]) == type(got)(0, 0, 0)


def test_estimates_decisions_state_and_tokens_round_trip(store):
    from algaflow.control.decisions import Decision
    from algaflow.store.base import ESTIMATE_COLUMNS

    table = pd.DataFrame({"time_us": [1, 2], "biomass_g_per_l": [0.5, 0.6], "biomass_sd": [0.01, 0.02],
                          "growth_rate_per_h": [0.03, 0.02], "growth_rate_sd": [0.001, 0.002],
                          "co2_captured_g": [1.0, 2.0], "co2_captured_sd": [0.1, 0.2],
                          "harvest_ready": [False, True]})  # fmt: skip
    assert store.write_estimates(table.assign(unit_id="r1")) == 2
    table.loc[1, "biomass_g_per_l"] = 0.65  # a later estimate at a stored time replaces it
    store.write_estimates(pd.concat([table.iloc[1:].assign(unit_id="r1"), table.iloc[:1].assign(unit_id="r2")]))
    got = store.estimates("r1")
    assert list(got.columns) == list(ESTIMATE_COLUMNS)
    pd.testing.assert_frame_equal(got, table, check_dtype=False)
    assert len(store.estimates("r1", start_us=2)) == 1 and len(store.estimates("r2")) == 1
    with pytest.raises(UnknownUnitError):
        store.write_estimates(table.assign(unit_id="ghost"))

    decision = Decision("r1", 5, "degas", "dissolved O2 12.5 mg/L above 12 mg/L", {"do_mg_per_l": 12.5})
    assert store.write_decisions([decision, decision]) == 1
    decisions = store.decisions("r1")
    assert decisions.kind.tolist() == ["degas"] and decisions.params[0] == {"do_mg_per_l": 12.5}
    assert decisions.reason[0].startswith("dissolved O2")

    assert store.load_state("pipeline") is None
    store.save_state("pipeline", b"\x00first")
    store.save_state("pipeline", b"\x00\xffsecond")
    assert store.load_state("pipeline") == b"\x00\xffsecond"

    store.save_token("ab" * 32, {"kind": "device", "unit_id": "r1"})
    store.save_token("cd" * 32, {"kind": "user", "role": "admin"})
    assert store.token_record("ab" * 32) == {"kind": "device", "unit_id": "r1"}
    assert store.token_record("ef" * 32) is None
    assert set(store.tokens()) == {"ab" * 32, "cd" * 32}
    assert store.delete_token("ab" * 32) and not store.delete_token("ab" * 32)
    assert store.token_record("ab" * 32) is None
