"""The fleet view's rows from a store the live pipeline filled: latest estimate, alarms opened and closed by
the pipeline's decisions and acknowledged by events, the forest equivalent by its definition."""

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from algaflow.control.decisions import Decision
from algaflow.dashboard.status import (
    ACRE_OF_FOREST_T_CO2_PER_YEAR,
    AlarmBook,
    alarm_history,
    fleet_status,
    unit_status,
)
from algaflow.service.events import record_event
from algaflow.service.pipeline import LivePipeline
from algaflow.store import open_store
from algaflow.store.base import to_time_us
from tests.service.test_pipeline import T0, culture_frames, feed


@pytest.fixture
def store(tmp_path):
    with open_store(tmp_path / "algaflow.db") as opened:
        opened.register_unit("r1", {"strain": "chlorella_vulgaris", "volume_l": 80.0, "site": {"name": "lab"}})
        opened.register_unit("r2", {"strain": "chlorella_vulgaris"})
        yield opened


def test_rows_carry_the_latest_estimate_and_the_open_alarms(store):
    frames = culture_frames("r1", steps=1000)  # DO above the degas threshold from step 900
    for first in range(0, len(frames), 100):
        store.ingest(frames[first:first + 100])
    feed(LivePipeline(store), frames)
    last_us = to_time_us(frames[-1].time)
    row = unit_status(store, "r1", store.unit("r1"), now_us=last_us + 60_000_000)
    latest = store.estimates("r1").iloc[-1]
    assert row.online and row.last_seen_us == last_us and row.site == "lab"
    assert row.biomass_g_per_l == latest.biomass_g_per_l and row.growth_rate_sd == latest.growth_rate_sd
    assert [alarm.kind for alarm in row.open_alarms] == ["degas"]
    assert row.days_of_data == pytest.approx((last_us - store.estimates("r1").time_us.iloc[0]) / 86_400e6)
    expected_acres = latest.co2_captured_g / 1e6 * 365.0 / row.days_of_data / ACRE_OF_FOREST_T_CO2_PER_YEAR
    assert row.tree_acres == pytest.approx(expected_acres)
    later = unit_status(store, "r1", store.unit("r1"), now_us=last_us + 3_600_000_000)
    assert not later.online  # an hour without frames
    empty = fleet_status(store, last_us)
    assert [r.unit_id for r in empty] == ["r1", "r2"] and empty[1].last_seen_us is None
    assert np.isnan(empty[1].biomass_g_per_l) and np.isnan(empty[1].tree_acres)


def test_alarms_open_close_and_are_acknowledged(store):
    t = [to_time_us(T0 + timedelta(hours=h)) for h in range(6)]
    decisions = pd.DataFrame({"time_us": t, "kind": ["degas_on", "temperature_alarm", "degas_off", "degas_on",
                                                     "harvest_ready", "note"],
                              "reason": list("abcdef"), "params": [{}] * 6})  # fmt: skip
    record_event(store, None, "r1", "alarm_ack", {"kind": "degas", "time_us": t[0]}, datetime.now(UTC))
    history = alarm_history("r1", decisions, store.events("r1"))
    assert [(a.kind, a.opened_us, a.closed_us, a.acknowledged) for a in history] == [
        ("degas", t[0], t[2], True), ("temperature", t[1], None, False), ("degas", t[3], None, False),
        ("harvest", t[4], None, False)]


def test_the_alarm_book_read_tick_by_tick_equals_the_history_of_the_whole_record(store):
    """Frames arrive in chunks (DO rises past the threshold at step 900 and, in r1, a harvest), an operator
    acknowledges an alarm between ticks, and two decisions share a time with one read at the previous tick:
    the book, reading only what is new each tick, holds what alarm_history gives on the whole record."""
    frames = culture_frames("r1", steps=1200)
    pipeline = LivePipeline(store)
    book = AlarmBook()
    for first in range(0, len(frames), 150):
        chunk = frames[first:first + 150]
        store.ingest(chunk)
        feed(pipeline, chunk)
        if first == 900:
            opened = [a for a in alarm_history("r1", store.decisions("r1"), store.events("r1")) if a.open]
            record_event(store, None, "r1", "alarm_ack", {"kind": opened[0].kind, "time_us": opened[0].opened_us},
                         datetime.now(UTC))  # fmt: skip
        got = [(a.kind, a.opened_us, a.closed_us, a.acknowledged) for a in book.alarms(store, "r1")]
        whole = alarm_history("r1", store.decisions("r1"), store.events("r1"))
        assert got == [(a.kind, a.opened_us, a.closed_us, a.acknowledged) for a in whole]
    assert any(acknowledged for *_, acknowledged in got) and any(closed is None for _, _, closed, _ in got)
    # a decision written later at the time of one already read (another kind) is still folded in
    last = store.decisions("r1").iloc[-1]
    store.write_decisions([Decision("r1", int(last.time_us), "temperature_alarm", "probe test", {})])
    kinds = [(a.kind, a.opened_us) for a in book.alarms(store, "r1")]
    assert ("temperature", int(last.time_us)) in kinds
    assert kinds == [(a.kind, a.opened_us) for a in alarm_history("r1", store.decisions("r1"), store.events("r1"))]


def test_sensor_faults_are_one_alarm_per_sensor_named_in_plain_words(store):
    """``sensor_fault`` / ``sensor_ok`` pair per sensor (catalog.decisions): two probes' faults at one time are
    two alarms; the one closed is the one its sensor's ``sensor_ok`` names; the label is the reason."""
    t = [to_time_us(T0 + timedelta(hours=h)) for h in range(3)]
    decisions = pd.DataFrame({"time_us": [t[0], t[0], t[1], t[2]],
                              "kind": ["sensor_fault", "sensor_fault", "sensor_ok", "degas_on"],
                              "reason": ["do_tank: reading stuck at one value", "ph_tube: disagrees", "", "O2"],
                              "params": [{"sensor": "do_tank", "fault": "stuck"},
                                         {"sensor": "ph_tube", "fault": "disagreeing"},
                                         {"sensor": "do_tank", "fault": "stuck"}, {}]})  # fmt: skip
    history = alarm_history("r1", decisions, store.events("r1"))
    assert [(a.kind, a.open) for a in history] == [("sensor do_tank", False), ("sensor ph_tube", True),
                                                   ("degas", True)]  # fmt: skip
    assert history[0].label == "do_tank: reading stuck at one value" and history[0].severity == "warning"
    assert history[2].label == "dissolved O2 high: degas"
