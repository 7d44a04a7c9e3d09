"""An acknowledgement deletes only frames the agent has sent and not yet had acknowledged: a forged one over
a huge range leaves every frame never sent in the outbox, is refused, logged once and counted."""

import json
import logging
import sqlite3

from fastapi import FastAPI
from fastapi.testclient import TestClient

from algaflow.agent.agent import Agent
from algaflow.agent.outbox import Outbox
from algaflow.agent.transport import HttpTransport, MqttTransport
from tests.agent.conftest import FakeMessage, Idle, samples
from tests.service.conftest import free_port

FORGED = [[0, 1_000_000_000]]


def test_a_forged_ack_over_a_huge_range_deletes_only_the_sent_frames(tmp_path):
    outbox = Outbox(tmp_path / "outbox.db", "r1")
    outbox.put_many(samples(5000))
    outbox.mark_sent([seq for seq, _ in outbox.due(limit=1677, resend_after_s=30)])
    assert outbox.acknowledge(FORGED) == (1677, [(1677, 1_000_000_000)])
    assert outbox.pending() == 3323
    assert [seq for seq, _ in outbox.due(limit=3, resend_after_s=30)] == [1677, 1678, 1679]
    # the service repeats an acknowledgement (a resend was stored twice): nothing more to delete, nothing refused
    assert outbox.acknowledge([[0, 1676]]) == (0, [])
    # frames sent, then made due again by a reconnect, stay acknowledgeable: the server may ack the first copy
    outbox.mark_sent([1677, 1678, 1679, 1680])
    outbox.resend_all()
    assert outbox.acknowledge([[1677, 1679], [1681, 1681]]) == (3, [(1681, 1681)])
    assert outbox.state() == (3320, 1, 0, 5000)


def test_the_agent_refuses_a_forged_mqtt_ack_logs_it_once_and_counts_it(tmp_path, caplog):
    outbox = Outbox(tmp_path / "outbox.db", "r1")
    outbox.put_many(samples(5000))
    transport = MqttTransport("r1", "127.0.0.1", free_port())  # nothing listens: only the callback is used
    try:
        agent = Agent(Idle(), outbox, transport)
        outbox.mark_sent(list(range(1677)))
        with caplog.at_level(logging.WARNING, logger="algaflow.agent"):
            transport._on_message(
                None, None, FakeMessage("algaflow/r1/commands", json.dumps({"kind": "ack", "seqs": FORGED}).encode())
            )
            transport._on_message(None, None, FakeMessage("algaflow/r1/commands", b'{"kind": "ack", "seqs": 7}'))
    finally:
        transport.close()
    assert agent.acknowledged == 1677 and agent.refused_acks == 1 and outbox.pending() == 3323
    refusals = [r.getMessage() for r in caplog.records if "refused an acknowledgement" in r.getMessage()]
    assert len(refusals) == 1 and "1677..1000000000" in refusals[0]
    assert any("unreadable acknowledgement" in r.getMessage() for r in caplog.records)


def test_a_forged_http_ack_deletes_only_the_batch_that_was_posted(tmp_path):
    app = FastAPI()

    @app.post("/api/v1/frames")
    def frames() -> dict:
        return {"new_frames": 0, "new_readings": 0, "new_events": 0, "acknowledged": {"r1": FORGED}}

    outbox = Outbox(tmp_path / "outbox.db", "r1")
    outbox.put_many(samples(5000))
    agent = Agent(Idle(), outbox, HttpTransport("http://unused", "token", client=TestClient(app)))
    assert agent.step() == 500
    assert agent.acknowledged == 500 and agent.refused_acks == 1
    assert outbox.pending() == 4500 and outbox.due(limit=1, resend_after_s=30)[0][0] == 500


def test_an_outbox_file_of_the_older_agent_opens_and_keeps_its_sent_frames(tmp_path):
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as old:  # the schema before sent_count and the dead-letter table
        old.executescript("CREATE TABLE outbox (seq INTEGER PRIMARY KEY, payload TEXT NOT NULL, "
                          "sent_at REAL NOT NULL DEFAULT 0);"
                          "CREATE TABLE counter (unit_id TEXT PRIMARY KEY, next_seq INTEGER NOT NULL);")  # fmt: skip
        old.executemany(
            "INSERT INTO outbox VALUES (?, ?, ?)",
            [(seq, json.dumps({"seq": seq}), 1.0e9 if seq < 4 else 0.0) for seq in range(10)],
        )
        old.execute("INSERT INTO counter VALUES ('r1', 10)")
    old.close()
    outbox = Outbox(path, "r1")
    assert outbox.state() == (10, 4, 0, 10)
    assert outbox.acknowledge([[0, 9]]) == (4, [(4, 9)])
    assert outbox.put_many(samples(1)) == [10]
    outbox.close()
    assert Outbox(path, "r1").state() == (7, 0, 0, 11)  # reopened: upgraded once, nothing lost
