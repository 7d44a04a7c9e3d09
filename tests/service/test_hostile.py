"""Hand-written hostile input (issue 19): each case is refused where it enters, over HTTP (a 4xx naming the
field) and over MQTT (a counted rejection), and afterwards the service runs on and stores every valid frame
it acknowledges. Beside them: hostile rows written straight into the store never stop the pipeline, on a
live service or across restarts; they are quarantined and listed for an admin.
"""

import json
import time
from datetime import UTC, datetime, timedelta

import numpy as np
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from algaflow.catalog import SENSORS
from algaflow.catalog.events import MAX_TEXT
from algaflow.service.config import Settings
from algaflow.service.server import Service
from algaflow.store import ReadingBatch, StoredEvent
from algaflow.store.base import to_time_us
from tests.service.conftest import bearer, bridged_service

NOW = datetime.now(UTC).replace(microsecond=0)
T0 = NOW - timedelta(hours=2)


def nested(depth: int) -> dict:
    value: dict = {"x": 1}
    for _ in range(depth):
        value = {"x": value}
    return value


def event(kind: str, params, **more) -> dict:
    return {"kind": kind, "params": params, **more}


# (what, changes to a valid frame, a word the refusal names): every one of them must be refused.
FRAME_CASES = [
    # readings
    ("unknown sensor", {"readings": {"od999": 1.0}}, "od999"),
    ("sensor name of 10 kB", {"readings": {"o" * 10_000: 1.0}}, "readings"),
    ("reading as text", {"readings": {"od750": "0.4"}}, "od750"),
    ("reading as boolean", {"readings": {"od750": True}}, "od750"),
    ("reading null", {"readings": {"od750": None}}, "od750"),
    ("reading as list", {"readings": {"od750": [0.4]}}, "od750"),
    ("reading as object", {"readings": {"od750": {"v": 0.4}}}, "od750"),
    ("reading NaN", {"readings": {"od750": float("nan")}}, "od750"),
    ("reading Infinity", {"readings": {"od750": float("inf")}}, "od750"),
    ("reading -Infinity", {"readings": {"ph_tank": float("-inf")}}, "ph_tank"),
    ("readings as list", {"readings": [["od750", 0.4]]}, "readings"),
    ("readings as text", {"readings": "od750=0.4"}, "readings"),
    ("more readings than sensors", {"readings": {f"s{k}": 1.0 for k in range(len(SENSORS) + 1)}}, "readings"),
    # the frame's time
    ("time missing", {"time": None}, "time"),
    ("time without zone", {"time": "2026-11-21T08:00:00"}, "time"),
    ("time as a date", {"time": "2026-11-21"}, "time"),
    ("time as epoch seconds", {"time": 1_764_000_000}, "time"),
    ("time as epoch text", {"time": "1764000000"}, "time"),
    ("time as empty text", {"time": ""}, "time"),
    ("time in 1970", {"time": "1970-01-01T00:00:00Z"}, "time"),
    ("time in 1999", {"time": "1999-12-31T23:59:59Z"}, "time"),
    ("time an hour ahead", {"time": (NOW + timedelta(hours=1)).isoformat()}, "time"),
    ("time in 9999", {"time": "9999-06-01T00:00:00Z"}, "time"),
    ("time past the calendar in UTC", {"time": "9999-12-31T23:59:59-05:00"}, "time"),
    ("time before the calendar in UTC", {"time": "0001-01-01T00:00:00+05:00"}, "time"),
    ("time month 13", {"time": "2026-13-01T00:00:00Z"}, "time"),
    ("time hour 25", {"time": "2026-11-01T25:00:00Z"}, "time"),
    ("time offset without colon", {"time": "2026-11-01T08:00:00+0100"}, "time"),
    ("time as list", {"time": ["2026-11-01T08:00:00Z"]}, "time"),
    ("time with space", {"time": "2026-11-01 08:00:00Z"}, "time"),
    # seq
    ("seq negative", {"seq": -1}, "seq"),
    ("seq boolean", {"seq": False}, "seq"),
    ("seq text", {"seq": "7"}, "seq"),
    ("seq fractional", {"seq": 7.5}, "seq"),
    ("seq 2^63", {"seq": 2**63}, "seq"),
    ("seq null", {"seq": None}, "seq"),
    ("seq missing", {"seq": ...}, "seq"),
    # unit id
    ("unit empty", {"unit_id": ""}, "unit_id"),
    ("unit 65 characters", {"unit_id": "u" * 65}, "unit_id"),
    ("unit with slash", {"unit_id": "r1/telemetry"}, "unit_id"),
    ("unit with MQTT plus", {"unit_id": "r+"}, "unit_id"),
    ("unit with MQTT hash", {"unit_id": "r#"}, "unit_id"),
    ("unit dot dot", {"unit_id": "../etc"}, "unit_id"),
    ("unit with space", {"unit_id": "r 1"}, "unit_id"),
    ("unit unicode", {"unit_id": "réacteur"}, "unit_id"),
    ("unit number", {"unit_id": 1}, "unit_id"),
    ("unit null", {"unit_id": None}, "unit_id"),
    # the frame
    ("an extra field", {"extra": 1}, "extra"),
    ("events not a list", {"events": {"kind": "note"}}, "events"),
    ("33 events", {"events": [event("note", {})] * 33}, "events"),
    # events: kinds and their parameters (the event table)
    ("event kind unknown", {"events": [event("explode", {})]}, "explode"),
    ("event kind null", {"events": [event(None, {})]}, "kind"),
    ("event kind missing", {"events": [{"params": {}}]}, "kind"),
    ("event with an extra field", {"events": [{"kind": "note", "params": {}, "by": "me"}]}, "by"),
    ("dry weight without g_per_l", {"events": [event("dry_weight_sample", {})]}, "g_per_l"),
    ("dry weight as text", {"events": [event("dry_weight_sample", {"g_per_l": "1.2"})]}, "g_per_l"),
    ("dry weight negative", {"events": [event("dry_weight_sample", {"g_per_l": -0.1})]}, "g_per_l"),
    ("dry weight 1e6 g/L", {"events": [event("dry_weight_sample", {"g_per_l": 1e6})]}, "g_per_l"),
    ("dry weight boolean", {"events": [event("dry_weight_sample", {"g_per_l": True})]}, "g_per_l"),
    ("harvest without params", {"events": [{"kind": "harvest"}]}, "fraction"),
    ("harvest fraction 0", {"events": [event("harvest", {"fraction": 0.0})]}, "fraction"),
    ("harvest fraction 1", {"events": [event("harvest", {"fraction": 1.0})]}, "fraction"),
    ("harvest fraction -0.1", {"events": [event("harvest", {"fraction": -0.1})]}, "fraction"),
    ("harvest fraction 1.5", {"events": [event("harvest", {"fraction": 1.5})]}, "fraction"),
    ("harvest fraction as text", {"events": [event("harvest", {"fraction": "0.5"})]}, "fraction"),
    ("harvest fraction null", {"events": [event("harvest", {"fraction": None})]}, "fraction"),
    ("harvest negative grams", {"events": [event("harvest", {"fraction": 0.5, "harvested_g": -3.0})]}, "harvested_g"),
    ("dilution fraction boolean", {"events": [event("dilution", {"fraction": True})]}, "fraction"),
    ("params nested twice", {"events": [event("note", nested(1))]}, "params"),
    ("params nested 300 deep", {"events": [event("note", nested(300))]}, "params"),
    ("params with a list", {"events": [event("note", {"text": ["a", "b"]})]}, "text"),
    ("params as list", {"events": [event("note", [1, 2])]}, "params"),
    ("params as text", {"events": [event("note", "hello")]}, "params"),
    ("params null", {"events": [event("note", None)]}, "params"),
    ("a note's text too long", {"events": [event("note", {"text": "x" * (MAX_TEXT + 1)})]}, "text"),
    ("a note's text with NUL", {"events": [event("note", {"text": "a\x00b"})]}, "text"),
    ("a note with an unknown parameter", {"events": [event("note", {"colour": "green"})]}, "colour"),
    ("17 parameters", {"events": [event("note", {f"p{k}": k for k in range(17)})]}, "params"),
    ("calibration of an unknown sensor", {"events": [event("calibration", {"sensor": "od999"})]}, "sensor"),
    ("calibration sensor as number", {"events": [event("calibration", {"sensor": 750})]}, "sensor"),
    ("lamp at 101 %", {"events": [event("set_led", {"value": 101.0})]}, "value"),
    ("lamp without value", {"events": [event("set_led", {})]}, "value"),
    ("setpoint 1000 °C", {"events": [event("set_temperature", {"value": 1000.0})]}, "value"),
    ("air flow negative", {"events": [event("set_air_flow", {"value": -1.0})]}, "value"),
    ("CO2 over 100 %", {"events": [event("set_co2", {"value": 2e6})]}, "value"),
    ("nitrate dose negative", {"events": [event("dose_nitrate", {"nitrate_mg_per_l": -5.0})]}, "nitrate"),
    ("alarm ack time fractional", {"events": [event("alarm_ack", {"kind": "degas", "time_us": 1.5})]}, "time_us"),
    ("alarm ack time negative", {"events": [event("alarm_ack", {"kind": "degas", "time_us": -1})]}, "time_us"),
    ("alarm ack kind as number", {"events": [event("alarm_ack", {"kind": 3})]}, "kind"),
    ("event an hour ahead", {"events": [event("note", {}, time=(NOW + timedelta(hours=1)).isoformat())]}, "time"),
    ("event in 9999", {"events": [event("harvest", {"fraction": 0.5}, time="9999-01-01T00:00:00Z")]}, "time"),
    ("event in 1970", {"events": [event("note", {}, time="1970-01-01T00:00:00Z")]}, "time"),
    ("event time without zone", {"events": [event("note", {}, time="2026-11-21T08:00:00")]}, "time"),
    ("event time as number", {"events": [event("note", {}, time=0)]}, "time"),
]
# whole payloads that are not a frame at all
RAW_CASES = [
    ("not JSON", b"{frames: [", "JSON"),
    ("empty body", b"", "body"),
    ("JSON null", b"null", "body"),
    ("a number", b"42", "body"),
    ("a text", b'"frames"', "body"),
    ("frames empty", b'{"frames": []}', "frames"),
    ("frames not a list", b'{"frames": {"unit_id": "r1"}}', "frames"),
    ("frames of numbers", b'{"frames": [1, 2, 3]}', "frames"),
    ("an array nested 5,000 deep", b"[" * 5000 + b"]" * 5000, "body"),
    ("an object nested 5,000 deep", b'{"a":' * 5000 + b"1" + b"}" * 5000, "body"),
    ("invalid UTF-8", b'{"frames": [{"unit_id": "\xff\xfe"}]}', "body"),
]
assert len(FRAME_CASES) + len(RAW_CASES) >= 100


def frame(unit: str, seq: int, changes: dict | None = None) -> dict:
    base = {"unit_id": unit, "time": (T0 + timedelta(minutes=seq)).isoformat(), "seq": seq,
            "readings": {"od750": 0.3 + 0.001 * seq, "temp_tank": 25.0, "do_tank": 8.0}}  # fmt: skip
    for key, value in (changes or {}).items():
        if value is ...:
            base.pop(key)
        else:
            base[key] = value
    return base


def body(payload: dict | list) -> bytes:
    """JSON as an agent in another language might write it (NaN and Infinity kept as their JS literals)."""
    return json.dumps(payload, allow_nan=True).encode()


@pytest.mark.parametrize(("what", "changes", "named"), FRAME_CASES, ids=[c[0] for c in FRAME_CASES])
def test_a_hostile_frame_is_refused_over_http_naming_the_field(service, what, changes, named):
    client, device = service.client, bearer(service.tokens["r1"])
    response = client.post("/api/v1/frames", content=body({"frames": [frame("r1", 0, changes)]}),
                           headers={**device, "Content-Type": "application/json"})  # fmt: skip
    assert 400 <= response.status_code < 500, (what, response.status_code, response.text[:300])
    refusal = response.json()
    assert named in refusal["detail"] or any(named in p["where"] + p["problem"] for p in refusal.get("problems", []))
    assert service.store.frame_log("r1").empty and service.store.events("r1").empty


@pytest.mark.parametrize(("what", "payload", "named"), RAW_CASES, ids=[c[0] for c in RAW_CASES])
def test_a_payload_that_is_no_frame_is_refused_over_http(service, what, payload, named):
    response = service.client.post(
        "/api/v1/frames", content=payload, headers={**bearer(service.tokens["r1"]), "Content-Type": "application/json"}
    )
    assert 400 <= response.status_code < 500, (what, response.status_code)
    assert response.json()["detail"]


def test_after_every_hostile_frame_the_service_stores_what_it_acknowledges(service):
    client, device = service.client, bearer(service.tokens["r1"])
    for _, changes, _ in FRAME_CASES:
        client.post("/api/v1/frames", content=body({"frames": [frame("r1", 0, changes)]}),
                    headers={**device, "Content-Type": "application/json"})  # fmt: skip
    for _, payload, _ in RAW_CASES:
        client.post("/api/v1/frames", content=payload, headers={**device, "Content-Type": "application/json"})
    good = client.post("/api/v1/frames", json={"frames": [frame("r1", k) for k in range(60)]}, headers=device)
    assert good.status_code == 200 and good.json()["acknowledged"] == {"r1": [[0, 59]]}
    assert len(service.store.frame_log("r1")) == 60 and len(service.store.readings("r1")) == 180
    health = client.get("/api/v1/health").json()
    assert health["status"] == "ok" and health["rejected_http"] >= len(FRAME_CASES) + len(RAW_CASES)


def test_hostile_messages_over_mqtt_are_refused_counted_and_the_bridge_runs_on(tmp_path, require_service):
    """The same cases published on the unit's telemetry topic (the Mosquitto on 127.0.0.1:1883)."""
    require_service("Mosquitto", 1883)
    service, unit = bridged_service(tmp_path, "hostile", {"strain": "chlorella_vulgaris"})
    service.start()
    payloads = [body(frame(unit, 0, changes)) for _, changes, _ in FRAME_CASES] + [p for _, p, _ in RAW_CASES]
    replies: list[dict] = []
    device = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"dev-{unit}")
    device.on_message = lambda client, userdata, message: replies.append(json.loads(message.payload))
    try:
        assert service.bridge.connected.wait(10)
        device.connect("127.0.0.1", 1883)
        device.subscribe(f"algaflow/{unit}/commands", qos=1)
        device.loop_start()
        time.sleep(0.3)
        for payload in payloads:
            device.publish(f"algaflow/{unit}/telemetry", payload, qos=1).wait_for_publish(5)
        for k in range(60):
            device.publish(f"algaflow/{unit}/telemetry", body(frame(unit, k)), qos=1).wait_for_publish(5)
        counters = service.ingestor.counters
        deadline = time.time() + 60
        while time.time() < deadline and (counters.mqtt_by_unit.get(unit, 0) < len(payloads) + 60
                                          or len(service.store.frame_log(unit)) < 60):  # fmt: skip
            time.sleep(0.1)
        assert counters.mqtt_by_unit[unit] == len(payloads) + 60
        assert counters.rejected_by_unit[unit] == len(payloads)  # each hostile message refused and counted
        assert len(service.store.frame_log(unit)) == 60 and len(service.store.readings(unit)) == 180
        assert service.store.events(unit).empty
        assert service.bridge._worker.is_alive() and service.pipeline._worker.is_alive()
        deadline = time.time() + 10
        while time.time() < deadline and not any(r.get("kind") == "ack" for r in replies):
            time.sleep(0.1)
        refusals = [r for r in replies if r.get("kind") == "rejected"]
        assert len(refusals) == len(payloads) and all(r["detail"] for r in refusals)
        acked = {seq for r in replies if r.get("kind") == "ack" for first, last in r["seqs"]
                 for seq in range(first, last + 1)}  # fmt: skip
        assert acked == set(range(60))  # every acknowledged frame is stored, and only those
    finally:
        device.loop_stop()
        device.disconnect()
        service.stop()


# ---- stored rows the pipeline cannot use ------------------------------------------------------------------------
def hostile_rows(store, unit: str) -> int:
    """Write straight into the store what no edge lets in (an older version, a manual fix, another writer);
    returns how many records were written. (NaN readings are not among them: SQLite's store refuses them.)"""
    t = to_time_us(T0)
    events = [StoredEvent(unit, t + 1, "dry_weight_sample", {}),
              StoredEvent(unit, t + 2, "harvest", {"fraction": 5.0}),
              StoredEvent(unit, t + 3, "harvest", {"fraction": "half"}),
              StoredEvent(unit, to_time_us(datetime(9999, 1, 1, tzinfo=UTC)), "harvest", {"fraction": 0.5}),
              StoredEvent(unit, -5, "dilution", {"fraction": 0.5}),
              StoredEvent(unit, t + 4, "note", nested(300)),
              StoredEvent(unit, t + 5, "note", {"text": ["a", {"b": 1}]}),
              StoredEvent(unit, t + 6, "teleport", {}),
              StoredEvent(unit, t + 7, "calibration", {"sensor": 750}),
              StoredEvent(unit, t + 8, "dry_weight_sample", {"g_per_l": float("nan")})]  # fmt: skip
    store.write_events(events)
    minutes = [t + 60_000_000 * k for k in range(5)]
    far = to_time_us(datetime(9999, 1, 1, tzinfo=UTC))
    sensors = ["od750", "od750", "do_tank", "temp_tank", "od750", "od750", "od750", "ph_tank"]
    readings = ReadingBatch([unit] * 8, sensors,
                            [minutes[0], minutes[1], minutes[2], minutes[3], far, -60_000_000, minutes[4], minutes[4]],
                            [float("-inf"), float("inf"), float("-inf"), float("inf"), 0.4, 0.4, 1e300, float("inf")],
                            [0, 0, 0, 0, 0, 0, 1, 0])  # fmt: skip
    store.write_readings(readings)
    return len(events) + len(readings)


def test_hostile_stored_rows_never_stop_the_service_and_are_quarantined(tmp_path, require_service):
    settings = Settings.model_validate({"store": {"url": str(tmp_path / "s.db")}, "mqtt": {"mode": "off"},
                                        "lake": {"compact_every_s": 0}})  # fmt: skip
    first = Service(settings)
    first.store.register_unit("r1", {"strain": "chlorella_vulgaris"})
    first.store.register_unit("odd", {"strain": "kelp", "volume_l": "a lot", "sensors": "od750"})
    first.store.save_state("live_pipeline", b"not a checkpoint at all")
    from algaflow.service.auth import issue_user_token

    admin = issue_user_token(first.store, "admin")
    hostile_rows(first.store, "r1")
    hostile_rows(first.store, "odd")
    first.start()
    first.pipeline.wait()
    assert first.pipeline._worker.is_alive()
    # a live frame with a bad event in it, straight into the pipeline (as the store would hand it on)
    first.pipeline.submit(
        ReadingBatch(["r1"], ["od750"], [to_time_us(T0) + 3_600_000_000], [0.41], [0]),
        [StoredEvent("r1", to_time_us(T0) + 3_600_000_000, "dry_weight_sample", {})],
    )
    first.pipeline.wait()
    assert first.pipeline._worker.is_alive()
    first.stop()
    for _ in range(2):  # every later start replays the same rows: it survives them and lists them once
        again = Service(settings)
        again.start()
        again.pipeline.wait()
        listed = again.pipeline.quarantine.items()
        kinds = {(item.unit_id, item.what) for item in listed}
        assert {("r1", "event"), ("r1", "readings"), ("odd", "event"), ("odd", "readings"), ("odd", "metadata"),
                ("", "state")} <= kinds, kinds  # fmt: skip
        assert len(listed) == len({item.key() for item in listed})  # nothing listed twice
        assert sum(item.what == "event" and item.unit_id == "r1" for item in listed) == 11  # 10 stored, 1 live
        from fastapi.testclient import TestClient

        client = TestClient(again.app, raise_server_exceptions=False)
        shown = client.get("/api/v1/quarantine", headers=bearer(admin))
        assert shown.status_code == 200 and shown.json()["total"] == again.pipeline.quarantine.total
        assert client.get("/api/v1/units/r1/events", headers=bearer(admin)).status_code == 200  # nested params too
        assert client.get("/api/v1/health").json()["quarantined"] == again.pipeline.quarantine.total
        estimates = again.store.estimates("r1")
        assert len(estimates) >= 1 and estimates.biomass_g_per_l.notna().all()  # the good readings were used
        assert again.pipeline.tracks["r1"].last_time_us < to_time_us(NOW + timedelta(minutes=5))  # not 9999
        again.stop()


def test_a_unit_the_pipeline_fails_on_is_quarantined_and_the_others_go_on(tmp_path):
    """A damaged calibration file (a stored thing the edge never saw) makes one unit's chain fail to start: that
    unit's batch is quarantined with the error, the other unit of the same batch is estimated as usual."""
    from algaflow.service.config import PipelineSettings
    from algaflow.service.pipeline import LivePipeline
    from algaflow.store import open_store

    curves = tmp_path / "calibrations"
    curves.mkdir()
    (curves / "od750__chlorella_vulgaris.v1.json").write_text('{"kind": "biomass", "coeff')  # cut short
    with open_store(tmp_path / "s.db") as store:
        store.register_unit("broken", {"strain": "chlorella_vulgaris"})
        store.register_unit("fine", {"strain": "nannochloropsis_oceanica"})
        pipeline = LivePipeline(store, PipelineSettings(), calibrations=curves)
        pipeline.start()
        t = to_time_us(T0) + 60_000_000 * np.arange(30)
        batch = ReadingBatch(np.repeat(["broken", "fine"], 30), np.full(60, "od750"), np.r_[t, t],
                             np.full(60, 0.4), np.zeros(60))  # fmt: skip
        pipeline.submit(batch, [])
        pipeline.wait()
        assert pipeline._worker.is_alive()
        assert len(store.estimates("fine")) == 30 and store.estimates("broken").empty
        failed = [item for item in pipeline.quarantine.items() if item.what == "batch"]
        assert [item.unit_id for item in failed] == ["broken"] and "Error" in failed[0].reason
        pipeline.stop()
