"""The embedded broker (algaflow.service.broker) with the real service and real paho clients: only device tokens
(user name = unit id) and the service's own secret connect, a device publishes only its unit's telemetry and
status and hears only its unit's commands, so no one can read another unit's data or forge its acks; and the
bridge's rejections name the refused seqs."""

import json
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from algaflow.service.auth import issue_device_token, issue_user_token, token_hash
from algaflow.service.broker import SERVICE, SERVICE_USER, BrokerIdentity, may
from algaflow.service.config import Settings
from algaflow.service.mqtt_bridge import payload_seqs
from algaflow.service.server import Service
from tests.service.conftest import free_port

BRIDGE_ID = "algaflow-test-service"
T0 = datetime.now(UTC) - timedelta(hours=1)


def wait_for(condition, timeout_s: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


def frame(unit: str, seq: int, **changes) -> dict:
    return {"unit_id": unit, "time": (T0 + timedelta(minutes=seq)).isoformat(), "seq": seq,
            "readings": {"od750": 0.1 + 0.001 * seq}, **changes}  # fmt: skip


class Client:
    """A paho client (MQTT 3.1.1) that records what it hears and how its CONNECT and SUBSCRIBEs were answered."""

    def __init__(self, port: int, user: str | None = None, password: str | None = None, client_id: str | None = None,
                 clean_session: bool = True, will: str | None = None) -> None:  # fmt: skip
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id or f"test-{uuid.uuid4().hex[:8]}",
                                  clean_session=clean_session)  # fmt: skip
        if user is not None:
            self.client.username_pw_set(user, password)
        if will is not None:
            self.client.will_set(will, json.dumps({"kind": "ack", "seqs": [[0, 1_000_000_000]]}), qos=1)
        self.heard: list[tuple[str, dict | bytes]] = []
        self.suback: list = []
        self.reason = None
        self._answered = threading.Event()
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        self.client.on_subscribe = lambda c, userdata, mid, codes, properties: self.suback.extend(codes)
        self.client.connect("127.0.0.1", port, keepalive=10)
        self.client.loop_start()
        self._answered.wait(5)

    def _on_connect(self, client, userdata, flags, reason, properties) -> None:
        if self.reason is None:
            self.reason = reason
        self._answered.set()

    def _on_message(self, client, userdata, message) -> None:
        try:
            payload = json.loads(message.payload)
        except ValueError:
            payload = message.payload
        self.heard.append((message.topic, payload))

    @property
    def refused(self) -> bool:
        return self.reason is None or self.reason.is_failure

    def subscribe(self, *filters: str) -> list:
        before = len(self.suback)
        for topic in filters:
            self.client.subscribe(topic, qos=1)
        assert wait_for(lambda: len(self.suback) >= before + len(filters), 5)
        return self.suback[before:]

    def publish(self, topic: str, payload, retain: bool = False) -> None:
        body = payload if isinstance(payload, bytes) else json.dumps(payload)
        self.client.publish(topic, body, qos=1, retain=retain).wait_for_publish(5)

    def acked(self) -> set[int]:
        return {s for _, p in self.heard if isinstance(p, dict) and p.get("kind") == "ack"
                for first, last in p["seqs"] for s in range(first, last + 1)}  # fmt: skip

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def broker(tmp_path):
    """The service with its embedded broker on a free port, units u1 and u2 and their device tokens."""
    port = free_port()
    settings = Settings.model_validate({"store": {"url": str(tmp_path / "s.db")}, "pipeline": {"enabled": False},
                                        "limits": {"max_message_bytes": 4096},
                                        "mqtt": {"mode": "embedded", "host": "127.0.0.1", "port": port,
                                                 "client_id": BRIDGE_ID}})  # fmt: skip
    service = Service(settings)
    for unit in ("u1", "u2"):
        service.store.register_unit(unit, {"sensors": ["od750"]})
    service.tokens = {unit: issue_device_token(service.store, unit) for unit in ("u1", "u2")}
    service.port = port
    clients: list[Client] = []

    def connect(*args, **kwargs) -> Client:
        client = Client(port, *args, **kwargs)
        clients.append(client)
        return client

    service.connect = connect
    service.start()
    try:
        assert service.bridge.connected.wait(10)
        yield service
    finally:
        for client in clients:
            client.close()
        service.stop()


def test_anonymous_clients_and_wrong_or_revoked_tokens_are_refused_at_connect(broker):
    tokens = broker.tokens
    assert broker.connect().refused  # anonymous
    assert broker.connect("u1", "").refused
    assert broker.connect("u1", "afd_" + "x" * 43).refused  # not a token
    assert broker.connect("u1", tokens["u2"]).refused  # another unit's token
    assert broker.connect("u3", tokens["u1"]).refused  # a unit that token is not for
    assert broker.connect("u1", issue_user_token(broker.store, "admin")).refused  # a user token is no device's
    assert broker.connect(SERVICE_USER, "guess").refused  # the service's secret is this process's own
    assert broker.connect(SERVICE_USER, tokens["u1"]).refused
    assert not broker.connect("u1", tokens["u1"]).refused
    broker.store.delete_token(token_hash(tokens["u1"]))  # revoked: no new connection
    assert broker.connect("u1", tokens["u1"]).refused
    assert not broker.connect("u2", tokens["u2"]).refused


def test_a_device_stores_frames_only_on_its_own_units_topic(broker):
    u1 = broker.connect("u1", broker.tokens["u1"])
    u1.subscribe("algaflow/u1/commands")
    u1.publish("algaflow/u2/telemetry", frame("u2", 0))  # forged for u2: dropped by the broker
    u1.publish("algaflow/u2/telemetry", [frame("u2", 1), frame("u2", 2)])
    u1.publish("algaflow/u2/status", {"online": False}, retain=True)
    u1.publish("algaflow/u1/telemetry", frame("u1", 0))
    assert wait_for(lambda: u1.acked() == {0})
    time.sleep(0.3)
    assert broker.store.frame_log("u1").seq.tolist() == [0]
    assert len(broker.store.frame_log("u2")) == 0
    assert "u2" not in broker.ingestor.counters.mqtt_by_unit  # never reached the bridge


def test_a_device_hears_nothing_of_another_unit_even_subscribed_to_everything(broker):
    u2 = broker.connect("u2", broker.tokens["u2"])
    assert [c.is_failure for c in u2.subscribe("algaflow/u2/commands")] == [False]
    u2.publish("algaflow/u2/status", {"online": True}, retain=True)
    u2.publish("algaflow/u2/telemetry", frame("u2", 0), retain=True)  # retained: offered to later subscribers
    assert wait_for(lambda: u2.acked() == {0})
    u1 = broker.connect("u1", broker.tokens["u1"])
    codes = u1.subscribe("#", "algaflow/#", "algaflow/+/telemetry", "algaflow/+/commands", "algaflow/u2/commands",
                         "algaflow/u2/status", "algaflow/u1/telemetry", "$SYS/#")  # fmt: skip
    assert all(code.is_failure for code in codes)
    assert [c.is_failure for c in u1.subscribe("algaflow/u1/commands")] == [False]
    for seq in range(1, 6):
        u2.publish("algaflow/u2/telemetry", frame("u2", seq))
    assert wait_for(lambda: u2.acked() == set(range(6)))
    time.sleep(0.3)
    assert u1.heard == []
    assert broker.store.frame_log("u2").seq.tolist() == list(range(6))
    assert all(topic == "algaflow/u2/commands" for topic, _ in u2.heard)


def test_forged_acks_never_reach_a_unit_and_the_service_acks_the_right_unit(broker):
    u1 = broker.connect("u1", broker.tokens["u1"])
    u2 = broker.connect("u2", broker.tokens["u2"])
    u1.subscribe("algaflow/u1/commands")
    u2.subscribe("algaflow/u2/commands")
    forged = {"kind": "ack", "seqs": [[0, 1_000_000_000]]}
    u1.publish("algaflow/u2/commands", forged)
    u1.publish("algaflow/u1/commands", forged)  # its own commands topic: only the service writes there
    time.sleep(0.3)
    assert u1.heard == [] and u2.heard == []
    assert broker.connect("u1", broker.tokens["u1"], will="algaflow/u2/commands").refused  # nor through a will
    assert broker.connect("u1", broker.tokens["u1"], will="algaflow/u1/commands").refused
    u2.publish("algaflow/u2/telemetry", frame("u2", 0))
    u1.publish("algaflow/u1/telemetry", [frame("u1", 0), frame("u1", 1)])
    assert wait_for(lambda: u2.acked() == {0} and u1.acked() == {0, 1})
    time.sleep(0.3)
    assert u2.heard == [("algaflow/u2/commands", {"kind": "ack", "seqs": [[0, 0]]})]
    assert u1.heard == [("algaflow/u1/commands", {"kind": "ack", "seqs": [[0, 1]]})]


def test_an_agents_status_and_will_are_accepted(broker):
    agent = broker.connect("u1", broker.tokens["u1"], will="algaflow/u1/status")
    assert not agent.refused
    agent.publish("algaflow/u1/status", {"online": True}, retain=True)
    agent.subscribe("algaflow/u1/commands")
    agent.publish("algaflow/u1/telemetry", frame("u1", 0))
    assert wait_for(lambda: agent.acked() == {0})


def test_no_client_can_take_over_or_drop_the_bridges_session(broker):
    """amqtt would delete (clean session) or take over the session of a CONNECT's client id before it checks the
    credentials: the bridge's subscription would be gone, and its queued telemetry handed to the newcomer."""
    assert broker.connect(client_id=BRIDGE_ID, clean_session=True).refused  # anonymous
    assert broker.connect("u1", "wrong", client_id=BRIDGE_ID, clean_session=False).refused
    assert broker.connect("u1", broker.tokens["u1"], client_id=BRIDGE_ID, clean_session=True).refused
    assert broker.connect("u1", broker.tokens["u1"], client_id=BRIDGE_ID, clean_session=False).refused
    u1 = broker.connect("u1", broker.tokens["u1"], client_id="agent-u1")
    u1.subscribe("algaflow/u1/commands")
    assert broker.connect("u2", broker.tokens["u2"], client_id="agent-u1").refused  # u1's session is u1's
    u1.publish("algaflow/u1/telemetry", frame("u1", 0))
    assert wait_for(lambda: u1.acked() == {0})  # the bridge still subscribed, still connected
    assert broker.store.frame_log("u1").seq.tolist() == [0]


def test_a_rejection_names_the_refused_seqs(broker):
    u1 = broker.connect("u1", broker.tokens["u1"])
    u1.subscribe("algaflow/u1/commands")
    u1.publish("algaflow/u1/telemetry", [frame("u1", 5, readings={"od999": 1.0}), frame("u1", 6), "junk"])
    u1.publish("algaflow/u1/telemetry", frame("u1", 9, unit_id="u2"))
    u1.publish("algaflow/u1/telemetry", b"not json")
    u1.publish("algaflow/u1/telemetry", frame("u1", 8, time="2026-01-01T00:00:00"))  # no zone
    u1.publish("algaflow/u1/telemetry", [frame("u1", 11), frame("u1", 12, note="x" * 5000)])  # over 4,096 bytes
    assert wait_for(lambda: len(u1.heard) == 5)
    rejections = [payload for _, payload in u1.heard]
    assert [r["kind"] for r in rejections] == ["rejected"] * 5
    assert [(r["reason"], r.get("seqs")) for r in rejections] == [("invalid", [[5, 6]]), ("wrong_unit", [[9, 9]]),
                                                                  ("invalid", None), ("invalid", [[8, 8]]),
                                                                  ("too_large", [[11, 12]])]  # fmt: skip
    assert len(broker.store.frame_log("u1")) == 0


def test_the_acl_table():
    u1 = BrokerIdentity("u1")
    assert may(u1, "publish", "algaflow/u1/telemetry") and may(u1, "publish", "algaflow/u1/status")
    assert may(u1, "subscribe", "algaflow/u1/commands") and may(u1, "receive", "algaflow/u1/commands")
    for topic in ("algaflow/u2/telemetry", "algaflow/u1/commands", "algaflow/u1/events", "algaflow/u1",
                  "algaflow/u1/telemetry/x", "other/u1/telemetry"):  # fmt: skip
        assert not may(u1, "publish", topic)
    for topic in ("#", "algaflow/#", "algaflow/+/commands", "algaflow/u2/commands", "algaflow/u1/telemetry",
                  "algaflow/u1/+", "algaflow/u1/#"):  # fmt: skip
        assert not may(u1, "subscribe", topic) and not may(u1, "receive", topic)
    assert may(SERVICE, "publish", "algaflow/u1/commands") and not may(SERVICE, "publish", "algaflow/u1/telemetry")
    assert may(SERVICE, "subscribe", "algaflow/+/telemetry") and may(SERVICE, "receive", "algaflow/u2/telemetry")
    assert not may(SERVICE, "subscribe", "#") and not may(SERVICE, "subscribe", "algaflow/+/commands")


def test_refused_seqs_are_read_leniently():
    assert payload_seqs(json.dumps({"seq": 4, "junk": []}).encode()) == [[4, 4]]
    mixed = [{"seq": 3}, {"seq": 1}, {"seq": 2}, {"seq": 7}, "x", {"seq": "8"}, {"seq": True}, {"seq": 1.5},
             {"seq": -1}, [{"seq": 9}]]  # fmt: skip
    assert payload_seqs(json.dumps(mixed).encode()) == [[1, 3], [7, 7]]
    assert payload_seqs(b"not json") == payload_seqs(b"\xff\xfe") == payload_seqs(b"[" * 100_000) == []
    assert payload_seqs(b"{}") == payload_seqs(b"[]") == payload_seqs(b"42") == []
