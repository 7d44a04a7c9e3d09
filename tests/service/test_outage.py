"""Acceptance: 20 agents keep producing over MQTT (the Mosquitto on 127.0.0.1:1883) while the service is down
(SIGKILL, restarted after ALGAFLOW_OUTAGE_S seconds, 20 in CI; the acceptance run uses 600); afterwards every
frame of every unit is stored exactly once, and each unit's frames arrived in its order (the frame log)."""

import os
import signal
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from algaflow.agent.agent import Agent
from algaflow.agent.drivers import TableDriver
from algaflow.agent.outbox import Outbox
from algaflow.agent.transport import MqttTransport
from algaflow.store import open_store
from tests.service.conftest import free_port, serve

OUTAGE_S = float(os.environ.get("ALGAFLOW_OUTAGE_S", "20"))
AGENTS = 20
FRAMES_PER_S = 2.0




@pytest.mark.slow
def test_an_outage_loses_nothing_and_keeps_each_units_order(tmp_path, require_service):
    require_service("Mosquitto", 1883)
    port = free_port()
    group = f"outage{uuid.uuid4().hex[:8]}"
    config = tmp_path / "algaflow.toml"
    config.write_text(f'[store]\nurl = "sqlite:///{tmp_path}/store.db"\n[http]\nport = {port}\n'
                      f'[mqtt]\nmode = "external"\nport = 1883\nshared_group = "{group}"\n')
    env = {**os.environ, "ALGAFLOW_CONFIG": str(config)}
    units = [f"{group}-{k:02d}" for k in range(AGENTS)]
    with open_store(tmp_path / "store.db") as store:
        for unit in units:
            store.register_unit(unit, {"sensors": ["od750", "temp_tank"]})
    production_s = OUTAGE_S + 30.0
    frames = int(production_s * FRAMES_PER_S)
    service = serve(env, port)
    agents, threads = [], []
    for k, unit in enumerate(units):
        times = pd.date_range(datetime.now(UTC) - timedelta(hours=2), periods=frames, freq="1s")
        table = pd.DataFrame({"time": np.repeat(times, 2), "sensor": ["od750", "temp_tank"] * frames,
                              "value": np.tile([0.5, 25.0], frames) + k})  # fmt: skip
        driver = TableDriver(table, start=datetime.now(UTC) - timedelta(hours=2), speed=FRAMES_PER_S)
        agent = Agent(driver, Outbox(tmp_path / f"outbox-{unit}.db", unit), MqttTransport(unit, "127.0.0.1", 1883),
                      resend_after_s=10.0)  # fmt: skip
        agents.append(agent)
        threads.append(threading.Thread(target=agent.run, kwargs={"until_drained": True}, daemon=True))
    for thread in threads:
        thread.start()
    try:
        time.sleep(10.0)
        service.send_signal(signal.SIGKILL)
        service.wait()
        time.sleep(OUTAGE_S)
        waiting = sum(agent.outbox.pending() for agent in agents)
        service = serve(env, port)
        for thread in threads:
            thread.join(timeout=production_s + 300)
        assert not any(thread.is_alive() for thread in threads), "agents did not drain"
    finally:
        for agent in agents:
            agent.stop()
            agent.transport.close()
        service.send_signal(signal.SIGTERM)
        service.wait(60)
    assert waiting > 0  # the outage really held frames back
    with open_store(tmp_path / "store.db") as store:
        for unit in units:
            assert store.frame_log(unit).seq.tolist() == list(range(frames)), unit  # once each, in order
            assert len(store.readings(unit)) == 2 * frames
    print(f"\n{AGENTS} agents, outage {OUTAGE_S:g} s, {waiting} frames waiting in outboxes at its end, "
          f"{AGENTS * frames} frames stored once each, in order")
