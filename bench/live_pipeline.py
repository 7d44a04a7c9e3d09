"""1,000 units streaming one simulated day through the live pipeline of a real ``algaflow serve`` process
(SQLite, HTTP): the service's resident memory over time, and whether the pipeline keeps up (its backlog and
the estimates stored), against the plain ingest rate without the pipeline measured in the same run.

Each unit is a logistic culture read every --every-min minutes by od750, do_tank, temp_tank, ph_tank,
par_surface and temp_ambient; the day is sent as fast as the service acknowledges it, a time step of every
unit per request.

    .venv/bin/python bench/live_pipeline.py [--units 1000] [--every-min 5]
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import numpy as np

ALGAFLOW = str(Path(sys.executable).with_name("algaflow"))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def resident_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def run(units: int, every_min: float, pipeline: bool) -> tuple[float, list[tuple[float, float, int]], int]:
    with tempfile.TemporaryDirectory() as folder:
        port = free_port()
        config = Path(folder) / "algaflow.toml"
        config.write_text(f'[store]\nurl = "sqlite:///{folder}/live.db"\n[http]\nport = {port}\n[mqtt]\nmode = "off"\n'
                          f"[limits]\nrequests_per_second = 100000\nburst = 100000\n"
                          f"[pipeline]\nenabled = {'true' if pipeline else 'false'}\n")
        env = {**os.environ, "ALGAFLOW_CONFIG": str(config)}
        from algaflow.service.auth import issue_user_token
        from algaflow.store import open_store

        with open_store(f"{folder}/live.db") as store:
            for k in range(units):
                store.register_unit(f"u{k:04d}", {"strain": "chlorella_vulgaris", "volume_l": 80.0})
            token = issue_user_token(store, "admin")
        process = subprocess.Popen([ALGAFLOW, "serve"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=120,
                              headers={"Authorization": f"Bearer {token}"})  # fmt: skip
        for _ in range(300):
            try:
                client.get("/api/v1/health")
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        curve: list[tuple[float, float, int]] = []
        done = threading.Event()
        began = time.perf_counter()

        def watch() -> None:
            while not done.is_set():
                health = client.get("/api/v1/health").json()
                curve.append((time.perf_counter() - began, resident_mib(process.pid), health["pipeline_backlog"]))
                time.sleep(1.0)

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        rng = np.random.default_rng(0)
        rate = rng.uniform(0.02, 0.06, units)
        steps = int(24 * 60 / every_min)
        start = datetime.now(UTC) - timedelta(days=1, hours=1)
        readings = 0
        for step in range(steps):
            hours = step * every_min / 60
            biomass = 3.0 / (1.0 + 29.0 * np.exp(-rate * hours))
            od = biomass + rng.normal(0, 0.005, units)
            moment = (start + timedelta(hours=hours)).isoformat()
            frames = [{"unit_id": f"u{k:04d}", "time": moment, "seq": step,
                       "readings": {"od750": round(float(od[k]), 5), "do_tank": 9.0, "temp_tank": 25.0,
                                    "ph_tank": 7.5, "par_surface": 300.0, "temp_ambient": 20.0}}
                      for k in range(units)]  # fmt: skip
            client.post("/api/v1/frames", json={"frames": frames}).raise_for_status()
            readings += units * 6
        ingest_s = time.perf_counter() - began
        while client.get("/api/v1/health").json()["pipeline_backlog"] > 0:
            time.sleep(0.2)
        elapsed = time.perf_counter() - began
        done.set()
        watcher.join()
        estimates = len(client.get("/api/v1/units/u0000/estimates").json()["time"]) if pipeline else 0
        process.terminate()
        process.wait(60)
        print(f"{'with' if pipeline else 'without'} pipeline: {readings:,} readings in {ingest_s:.1f} s acknowledged, "
              f"processed by {elapsed:.1f} s; one simulated day = {86400 / elapsed:,.0f}× real time; "
              f"estimates of u0000: {estimates}/{steps}")
        return readings / elapsed, curve, estimates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--units", type=int, default=1000)
    parser.add_argument("--every-min", type=float, default=5.0)
    arguments = parser.parse_args()
    plain, _, _ = run(arguments.units, arguments.every_min, pipeline=False)
    live, curve, _ = run(arguments.units, arguments.every_min, pipeline=True)
    print("service memory with the pipeline (s, RSS MiB, backlog batches):")
    for t, rss, backlog in curve[:: max(1, len(curve) // 20)]:
        print(f"  {t:6.1f} s  {rss:7.1f} MiB  {backlog}")
    rss = np.array([c[1] for c in curve])
    half = len(rss) // 2
    print(f"live_pipeline: {live / plain:.2f}x vs ingest without the pipeline ({arguments.units} units, one day every "
          f"{arguments.every_min:g} min; RSS first half max {rss[:half].max():.0f} MiB, second half max "
          f"{rss[half:].max():.0f} MiB)")


if __name__ == "__main__":
    main()
