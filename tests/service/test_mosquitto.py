"""The generated Mosquitto configuration, run by a real Mosquitto: a device publishes only under its own unit,
with its device token as password; and the MQTT bridge against the Mosquitto on 127.0.0.1:1883 stores what
it acknowledges and refuses (counted, nothing stored) what is malformed or on another unit's topic."""

import getpass
import json
import os
import shutil
import socket
import subprocess
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from algaflow.service.auth import issue_device_token
from algaflow.service.mosquitto import SERVICE_USER, write_mosquitto_config
from algaflow.store import open_store
from tests.service.conftest import bridged_service, free_port


def connect(port: int, user: str, password: str, on_message=None) -> tuple[mqtt.Client, object]:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"{user}-{uuid.uuid4().hex[:6]}")
    client.username_pw_set(user, password)
    result = {}
    connected = threading.Event()

    def on_connect(c, userdata, flags, reason, properties):
        result["reason"] = reason
        connected.set()

    client.on_connect = on_connect
    if on_message:
        client.on_message = on_message
    client.connect("127.0.0.1", port)
    client.loop_start()
    connected.wait(5)
    return client, result.get("reason")


@pytest.fixture
def mosquitto(tmp_path):
    binary = shutil.which("mosquitto") or ("/usr/sbin/mosquitto" if os.path.exists("/usr/sbin/mosquitto") else None)
    if binary is None:
        if os.environ.get("ALGAFLOW_REQUIRE_SERVICES") == "1":
            pytest.fail("the mosquitto binary is not installed (ALGAFLOW_REQUIRE_SERVICES=1)")
        pytest.skip("the mosquitto binary is not installed")
    store = open_store(tmp_path / "store.db")
    for unit in ("r1", "r2"):
        store.register_unit(unit, {})
    tokens = {unit: issue_device_token(store, unit) for unit in ("r1", "r2")}
    port = free_port()
    files = write_mosquitto_config(store, tmp_path / "mosquitto", port=port, host="127.0.0.1",
                                   run_as=getpass.getuser())  # fmt: skip
    process = subprocess.Popen([binary, "-c", str(files.conf)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    for _ in range(50):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.1)
    yield port, tokens, files
    process.terminate()
    process.wait(10)
    store.close()


def test_a_device_publishes_only_under_its_own_unit(mosquitto):
    port, tokens, files = mosquitto
    received = []
    service, reason = connect(port, SERVICE_USER, files.service_password,
                              lambda c, u, m: received.append((m.topic, m.payload)))  # fmt: skip
    assert not reason.is_failure
    service.subscribe("algaflow/+/telemetry", qos=1)
    time.sleep(0.3)
    device, reason = connect(port, "r1", tokens["r1"])
    assert not reason.is_failure
    device.publish("algaflow/r2/telemetry", b"forged", qos=1).wait_for_publish(5)
    device.publish("algaflow/r1/telemetry", b"own", qos=1).wait_for_publish(5)
    time.sleep(0.5)
    assert received == [("algaflow/r1/telemetry", b"own")]
    _, refused = connect(port, "r1", tokens["r2"])  # another unit's token
    assert refused is None or refused.is_failure
    _, anonymous = connect(port, "", "")
    assert anonymous is None or anonymous.is_failure
    acl = files.acl.read_text()
    assert "user r1\ntopic write algaflow/r1/telemetry" in acl and "algaflow/r2" not in acl.split("user r2")[0].split(
        "user r1")[1]  # fmt: skip


def test_the_bridge_stores_what_it_acknowledges_and_refuses_the_rest(tmp_path, require_service):
    require_service("Mosquitto", 1883)
    service, unit = bridged_service(tmp_path, "bridge", {"sensors": ["od750"]})
    service.start()
    try:
        assert service.bridge.connected.wait(10)
        acks, commands = [], []

        def on_message(client, userdata, message):
            payload = json.loads(message.payload)
            (acks if payload.get("kind") == "ack" else commands).append(payload)

        device = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"dev-{unit}")
        device.on_message = on_message
        device.connect("127.0.0.1", 1883)
        device.loop_start()
        device.subscribe(f"algaflow/{unit}/commands", qos=1)
        time.sleep(0.3)
        t0 = datetime.now(UTC) - timedelta(hours=2)
        good = [{"unit_id": unit, "time": (t0 + timedelta(minutes=k)).isoformat(), "seq": k,
                 "readings": {"od750": 0.1 + 0.001 * k}} for k in range(30)]  # fmt: skip
        device.publish(f"algaflow/{unit}/telemetry", json.dumps(good[:10]), qos=1)
        for frame in good[10:]:
            device.publish(f"algaflow/{unit}/telemetry", json.dumps(frame), qos=1)
        hostile = [b"not json", b"{}", json.dumps({**good[0], "seq": 99, "readings": {"od999": 1}}).encode(),
                   json.dumps({**good[0], "seq": 98, "unit_id": "someone-else"}).encode(),
                   json.dumps({**good[0], "seq": 97, "time": "2026-01-01T00:00:00"}).encode()]  # fmt: skip
        for payload in hostile:
            device.publish(f"algaflow/{unit}/telemetry", payload, qos=1)
        deadline = time.time() + 10
        while time.time() < deadline and (sum(r[1] - r[0] + 1 for a in acks for r in a["seqs"]) < 30
                                          or len(commands) < len(hostile)):  # fmt: skip
            time.sleep(0.1)
        stored = service.store.frame_log(unit)
        assert stored.seq.tolist() == list(range(30))  # exactly once, in order
        assert sum(r[1] - r[0] + 1 for a in acks for r in a["seqs"]) == 30
        assert service.ingestor.counters.rejected_by_unit[unit] == len(hostile)  # (the broker may carry other tests')
        assert sorted(c["reason"] for c in commands if c["kind"] == "rejected") == ["invalid"] * 4 + ["wrong_unit"]
        device.disconnect()
        device.loop_stop()
    finally:
        service.stop()
