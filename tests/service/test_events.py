"""Operator events: refused field by field with nothing stored, or stored (a dry weight also as a reading)."""

from datetime import UTC, datetime, timedelta

import pytest

from algaflow.service.events import EventRejectedError, record_event
from algaflow.store import open_store


@pytest.fixture
def store(tmp_path):
    with open_store(tmp_path / "algaflow.db") as opened:
        opened.register_unit("r1", {"strain": "chlorella_vulgaris"})
        yield opened


@pytest.mark.parametrize(("kind", "params", "shift", "field"), [
    ("harvest", {"fraction": -0.2}, timedelta(0), "fraction"),
    ("harvest", {"fraction": 1.0}, timedelta(0), "fraction"),
    ("dry_weight_sample", {"g_per_l": 500.0}, timedelta(0), "g_per_l"),
    ("dry_weight_sample", {"g_per_l": "heavy"}, timedelta(0), "g_per_l"),
    ("harvest", {"fraction": 0.7}, timedelta(days=1), "time"),
    ("teleport", {}, timedelta(0), "kind"),
    ("calibration", {"sensor": "od999"}, timedelta(0), "sensor"),
])  # fmt: skip
def test_bad_events_are_refused_naming_the_field_and_nothing_is_stored(store, kind, params, shift, field):
    with pytest.raises(EventRejectedError) as refused:
        record_event(store, None, "r1", kind, params, datetime.now(UTC) + shift)
    assert refused.value.field == field and refused.value.message
    assert store.events("r1").empty and store.readings("r1").empty


def test_a_harvest_and_a_dry_weight_are_stored(store):
    moment = datetime.now(UTC) - timedelta(hours=1)
    assert record_event(store, None, "r1", "harvest", {"fraction": 0.7}, moment)
    assert not record_event(store, None, "r1", "harvest", {"fraction": 0.7}, moment)  # the same event again
    assert record_event(store, None, "r1", "dry_weight_sample", {"g_per_l": 1.25}, moment + timedelta(minutes=5))
    assert record_event(store, None, "r1", "calibration", {"sensor": "od750"}, moment + timedelta(minutes=9))
    assert store.events("r1").kind.tolist() == ["harvest", "dry_weight_sample", "calibration"]
    assert store.readings("r1", ["dry_weight"]).value.tolist() == [1.25]
    with pytest.raises(EventRejectedError, match="time zone"):
        record_event(store, None, "r1", "note", {}, datetime(2026, 1, 1))
