"""Acceptance: the service is killed with SIGKILL in the middle of a sustained ingest of 1,000,000 readings
sent by a real agent (its outbox, HTTP transport); after a restart every reading is stored exactly once and
the frame log holds every seq once, in order: nothing acknowledged was lost, and resends made no duplicates.
Run over each store backend (SQLite, PostgreSQL)."""

import os
import signal
import subprocess
import time
from datetime import UTC, datetime, timedelta

import httpx
import numpy as np
import pandas as pd
import pytest

from algaflow.store import open_store
from tests.service.conftest import ALGAFLOW, free_port, serve

SENSORS_20 = ["temp_tank", "temp_tube", "ph_tank", "ph_tube", "do_tank", "do_tube", "dco2_tank", "od680", "od750",
              "turbidity_tank", "turbidity_tube", "par_surface", "par_back", "led_power", "co2_gas_in",
              "co2_gas_out", "o2_gas_out", "air_flow", "water_flow", "temp_ambient"]  # fmt: skip
FRAMES = int(os.environ.get("ALGAFLOW_CRASH_READINGS", "1000000")) // len(SENSORS_20)


@pytest.mark.slow
def test_sigkill_mid_ingest_loses_nothing_acknowledged_and_duplicates_nothing(tmp_path, store_url):
    port = free_port()
    config = tmp_path / "algaflow.toml"
    config.write_text(f'[store]\nurl = "{store_url}"\n[http]\nport = {port}\n[mqtt]\nmode = "off"\n'
                      "[limits]\nrequests_per_second = 100000\nburst = 100000\n")
    env = {**os.environ, "ALGAFLOW_CONFIG": str(config)}
    subprocess.run([ALGAFLOW, "admin", "register-unit", "crash-1"], env=env, check=True, capture_output=True)
    token = subprocess.run([ALGAFLOW, "admin", "issue-token", "device", "--unit", "crash-1"], env=env, check=True,
                           capture_output=True, text=True).stdout.strip()  # fmt: skip
    start = datetime.now(UTC) - timedelta(days=30)
    times = pd.date_range(start, periods=FRAMES, freq="1s")
    rng = np.random.default_rng(0)
    pd.DataFrame({"unit_id": "crash-1", "time": np.repeat(times, len(SENSORS_20)),
                  "sensor": np.tile(SENSORS_20, FRAMES),
                  "value": rng.uniform(1.0, 2.0, FRAMES * len(SENSORS_20))}).to_parquet(tmp_path / "replay.parquet")
    service = serve(env, port)
    agent = subprocess.Popen([ALGAFLOW, "agent", "--unit", "crash-1", "--driver", "replay", "--file",
                              str(tmp_path / "replay.parquet"), "--transport", "http", "--url",
                              f"http://127.0.0.1:{port}", "--token", token, "--outbox", str(tmp_path / "outbox.db"),
                              "--speed", "1e9", "--backfill-days", "30", "--until-drained"],
                             env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)  # fmt: skip
    try:
        killed_at = 0
        deadline = time.time() + 600
        while time.time() < deadline:
            frames = httpx.get(f"http://127.0.0.1:{port}/api/v1/health", timeout=5).json()["frames"]
            if frames >= FRAMES * 0.4:
                killed_at = frames
                service.send_signal(signal.SIGKILL)
                service.wait()
                break
            time.sleep(0.05)
        assert 0 < killed_at < FRAMES, "the kill must land in the middle of the ingest"
        time.sleep(2.0)  # the agent meets a dead server and keeps its frames
        service = serve(env, port)
        output, _ = agent.communicate(timeout=900)
        assert agent.returncode == 0, output
    finally:
        agent.kill()
        service.send_signal(signal.SIGTERM)
        service.wait(60)
    with open_store(store_url) as store:
        log = store.frame_log("crash-1")
        assert log.seq.tolist() == list(range(FRAMES))  # every frame once, in the order sent
        readings = store.readings("crash-1")
        assert len(readings) == FRAMES * len(SENSORS_20)
        assert not readings.duplicated(["sensor", "time_us"]).any()
        assert store.readings("crash-1", ["od750"], every_s=3600)["count"].sum() == FRAMES
    print(f"\nSIGKILL after {killed_at} of {FRAMES} frames acknowledged; {len(readings):,} readings stored once")
