"""A frame the service refuses for good is moved to the outbox's dead-letter table and the rest flows on:
over HTTP by splitting a refused batch until only the refused frames are left, over MQTT by the seqs of the
service's ``rejected`` message."""

import json
import logging
import threading
import time
import uuid

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from algaflow.agent.agent import Agent
from algaflow.agent.outbox import MAX_DETAIL, Outbox
from algaflow.agent.transport import HttpTransport, MqttTransport
from tests.agent.conftest import FakeMessage, Idle, samples
from tests.service.conftest import free_port


def drain(agent: Agent, rounds: int = 200) -> None:
    for _ in range(rounds):
        agent.step()
        if agent.outbox.pending() == 0:
            return


def test_dead_letters_are_moved_in_one_piece_kept_and_requeued(tmp_path):
    outbox = Outbox(tmp_path / "outbox.db", "r1")
    outbox.put_many(samples(6))
    outbox.mark_sent([0, 1, 2, 3])
    assert outbox.dead_letter([[1, 2], [5, 5]], "HTTP 422", "x" * 5000) == 2  # 5 was never sent: not refusable
    assert outbox.state() == (4, 2, 2, 6) and outbox.dead_count() == 2
    letters = outbox.dead_letters()
    assert [(d.seq, d.reason, len(d.detail)) for d in letters] == [
        (1, "HTTP 422", MAX_DETAIL),
        (2, "HTTP 422", MAX_DETAIL),
    ]
    assert json.loads(letters[0].payload)["seq"] == 1 and [d.seq for d in outbox.dead_letters(last=1)] == [2]
    assert outbox.acknowledge([[0, 5]]) == (2, [(4, 5)])  # dead letters are not acknowledged (nor refused)
    outbox.close()
    reopened = Outbox(tmp_path / "outbox.db", "r1")
    assert reopened.dead_count() == 2  # kept in the same file
    assert reopened.requeue_dead() == 2 and reopened.dead_count() == 0
    assert [seq for seq, _ in reopened.due(limit=10, resend_after_s=30)] == [1, 2, 4, 5]


def test_one_non_finite_frame_of_a_thousand_is_dead_lettered_and_the_rest_stored(tmp_path, service):
    outbox = Outbox(tmp_path / "outbox.db", "r1")
    outbox.put_many(samples(1000, bad=frozenset({9})))  # the tenth frame: "od750": Infinity
    transport = HttpTransport("http://unused", service.tokens["r1"], client=service.client)
    agent = Agent(Idle(), outbox, transport)
    drain(agent)
    assert outbox.pending() == 0
    assert service.store.frame_log("r1").seq.tolist() == [seq for seq in range(1000) if seq != 9]
    (letter,) = outbox.dead_letters()
    assert letter.seq == 9 and letter.reason == "HTTP 422" and "not finite" in letter.detail
    assert agent.acknowledged == 999 and agent.dead_lettered == 1 and agent.failures == 0
    assert transport.posts < 60


def test_a_batch_over_the_services_limits_is_split_and_nothing_is_dead_lettered(tmp_path, make_service):
    service = make_service(max_frames_per_request=64, max_request_bytes=20_000)
    outbox = Outbox(tmp_path / "outbox.db", "r1")
    outbox.put_many(samples(700, bad=frozenset({3, 650})))
    transport = HttpTransport("http://unused", service.tokens["r1"], client=service.client)
    agent = Agent(Idle(), outbox, transport)
    drain(agent)
    assert outbox.pending() == 0 and [d.seq for d in outbox.dead_letters()] == [3, 650]
    assert len(service.store.frame_log("r1")) == 698


def test_an_mqtt_rejection_with_seqs_dead_letters_the_sent_ones_without_seqs_it_is_only_logged(tmp_path, caplog):
    outbox = Outbox(tmp_path / "outbox.db", "r1")
    outbox.put_many(samples(10))
    transport = MqttTransport("r1", "127.0.0.1", free_port())  # nothing listens: only the callback is used
    try:
        agent = Agent(Idle(), outbox, transport)
        outbox.mark_sent([0, 1, 2, 3, 4])

        def deliver(message: dict | bytes) -> None:
            payload = message if isinstance(message, bytes) else json.dumps(message).encode()
            transport._on_message(None, None, FakeMessage("algaflow/r1/commands", payload))

        with caplog.at_level(logging.ERROR, logger="algaflow.agent"):
            deliver({"kind": "rejected", "reason": "invalid", "detail": "readings.od750: not finite " + "y" * 2000,
                     "seqs": [[3, 3], [7, 7]]})  # fmt: skip
            deliver({"kind": "rejected", "reason": "too_large", "detail": "2000000 bytes"})
            deliver({"kind": "rejected", "reason": "invalid", "detail": "?", "seqs": "all"})
            deliver({"kind": "rejected", "reason": "unknown_unit", "detail": "unit 'r1' is not registered",
                     "seqs": [[0, 4]]})  # the unit, not its frames: as HTTP 404, nothing is dead-lettered  # fmt: skip
    finally:
        transport.close()
    (letter,) = outbox.dead_letters()  # 7 was never sent: the service cannot have refused it
    assert letter.seq == 3 and letter.reason == "invalid" and letter.detail.startswith("readings.od750: not finite")
    assert len(letter.detail) == MAX_DETAIL and agent.dead_lettered == 1 and outbox.pending() == 9
    logged = " ".join(r.getMessage() for r in caplog.records)
    assert "2000000 bytes" in logged and "(too_large)" in logged and "refuses unit r1 (unknown_unit)" in logged


def test_a_rejection_through_mosquitto_dead_letters_the_frame(tmp_path, require_service):
    require_service("Mosquitto", 1883)
    unit = f"dl-{uuid.uuid4().hex[:8]}"
    outbox = Outbox(tmp_path / "outbox.db", unit)
    outbox.put_many(samples(3))
    agent = Agent(Idle(), outbox, MqttTransport(unit, "127.0.0.1", 1883))
    thread = threading.Thread(target=agent.run, kwargs={"until_drained": True}, daemon=True)
    service = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"fake-service-{unit}")
    service.connect("127.0.0.1", 1883)
    service.loop_start()
    try:
        thread.start()
        deadline = time.monotonic() + 20
        while outbox.state().sent < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert outbox.state().sent == 3
        topic = f"algaflow/{unit}/commands"
        service.publish(topic, json.dumps({"kind": "rejected", "reason": "invalid", "detail": "bad",
                                           "seqs": [[1, 1]]}), qos=1).wait_for_publish(5)  # fmt: skip
        service.publish(topic, json.dumps({"kind": "ack", "seqs": [[0, 0], [2, 2]]}), qos=1).wait_for_publish(5)
        thread.join(timeout=20)
        assert not thread.is_alive()
    finally:
        agent.stop()
        agent.transport.close()
        service.loop_stop()
        service.disconnect()
    assert [(d.seq, d.reason) for d in outbox.dead_letters()] == [(1, "invalid")]
    assert agent.acknowledged == 2 and outbox.pending() == 0
