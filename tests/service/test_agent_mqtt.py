"""End to end over the default (embedded, authenticated) broker: an agent whose tenth frame the service refuses
sets that frame aside and the rest flows on at once, not after the bridge's 300 s wait for a missing seq."""

import threading
import time

from algaflow.agent.agent import Agent
from algaflow.agent.outbox import Outbox
from algaflow.agent.transport import MqttTransport
from algaflow.service.auth import issue_device_token
from algaflow.service.config import Settings
from algaflow.service.server import Service
from tests.agent.conftest import Idle, samples
from tests.service.conftest import free_port


def test_an_mqtt_agent_with_a_refused_frame_drains_and_every_other_frame_is_stored(tmp_path):
    port = free_port()
    service = Service(Settings.model_validate({"store": {"url": str(tmp_path / "s.db")},
                                               "mqtt": {"mode": "embedded", "host": "127.0.0.1", "port": port},
                                               "lake": {"compact_every_s": 0}}))  # fmt: skip
    service.store.register_unit("r1", {"strain": "chlorella_vulgaris"})
    token = issue_device_token(service.store, "r1")
    outbox = Outbox(tmp_path / "outbox.db", "r1")
    outbox.put_many(samples(200, bad=frozenset({9})))
    service.start()
    agent = Agent(Idle(), outbox, MqttTransport("r1", "127.0.0.1", port, token))
    runner = threading.Thread(target=agent.run, kwargs={"until_drained": True}, daemon=True)
    began = time.monotonic()
    try:
        runner.start()
        runner.join(60)
        drained_s = time.monotonic() - began
        assert not runner.is_alive(), f"{outbox.pending()} frames still wait after {drained_s:.0f} s"
        assert drained_s < 30  # far below the bridge's GAP_TIMEOUT_S
        assert [(d.seq, d.reason) for d in outbox.dead_letters()] == [(9, "invalid")]
        stored = set(service.store.frame_log("r1").seq.tolist())
        assert stored == set(range(200)) - {9} and agent.acknowledged == 199 and agent.refused_acks == 0
    finally:
        agent.stop()
        agent.transport.close()
        outbox.close()
        service.stop()
