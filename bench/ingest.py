"""Ingest speed, against the plain-SQL baseline measured in the same run.

1. HTTP: ``algaflow serve`` (SQLite, live pipeline on) in its own process; client threads post batches of
   frames (20 readings each, request bodies made before the clock starts) to /api/v1/frames; readings per
   second acknowledged (durably committed), and the acknowledgement latency per request (p50, p99). A run
   that sends every request it made before the time is up says so (then the service was faster than the
   requests prepared for it). Meanwhile the service's resident memory (VmRSS) and the live pipeline's backlog
   (/health) are sampled every 0.25 s: bounded by [pipeline] max_backlog_readings, they stay flat.
2. MQTT: the same service bridged to the Mosquitto on 127.0.0.1:1883; publishers send messages of frames
   with QoS 1, at most 20 messages ahead of the service's acks (as the agent's window: a broker's bounded
   queue must not drop what the service has not taken yet); readings per second from the first publish to
   the service's last ack on the commands topic.
3. Baseline: the same rows written with sqlite3's bulk insert (executemany into a table keyed by
   (unit, sensor, time), WAL, synchronous=FULL, one transaction per request's rows).
4. Query: the last 24 h of one unit's 20 sensors at 1-minute resolution from a store holding
   --query-units units × --query-days days (readings every --query-every-s seconds).

    .venv/bin/python bench/ingest.py [--seconds 20] [--query-units 100 --query-days 30 --query-every-s 60]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import numpy as np

from algaflow.catalog import SENSORS

SENSOR_NAMES = [s for s in SENSORS if s not in ("dry_weight", "cell_count", "level", "nitrate")][:20]
ALGAFLOW = str(Path(sys.executable).with_name("algaflow"))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def frame_batches(unit: str, frames_per_batch: int, start: datetime, first_seq: int = 0):
    """Endless batches of frames, one per second of data, 20 readings each."""
    seq = first_seq
    rng = np.random.default_rng(abs(hash(unit)) % 2**32)
    while True:
        frames = []
        for _ in range(frames_per_batch):
            values = rng.normal(10.0, 1.0, len(SENSOR_NAMES))
            frames.append({"unit_id": unit, "time": (start + timedelta(seconds=seq)).isoformat(), "seq": seq,
                           "readings": dict(zip(SENSOR_NAMES, values.round(4).tolist(), strict=True))})  # fmt: skip
            seq += 1
        yield frames


def start_service(folder: Path, mqtt_mode: str, group: str) -> tuple[subprocess.Popen, int, dict]:
    port = free_port()
    config = folder / "algaflow.toml"
    config.write_text(f'[store]\nurl = "sqlite:///{folder}/bench.db"\n[http]\nport = {port}\n'
                      f'[mqtt]\nmode = "{mqtt_mode}"\nport = 1883\nshared_group = "{group}"\n'
                      f'client_id = "bench-{group}"\n[limits]\nrequests_per_second = 100000\nburst = 100000\n')
    env = {**os.environ, "ALGAFLOW_CONFIG": str(config)}
    units = [f"bench-{k}" for k in range(8)]
    for unit in units:
        subprocess.run([ALGAFLOW, "admin", "register-unit", unit], env=env, check=True, capture_output=True)
    tokens = {unit: subprocess.run([ALGAFLOW, "admin", "issue-token", "device", "--unit", unit], env=env, check=True,
                                   capture_output=True, text=True).stdout.strip() for unit in units}  # fmt: skip
    process = subprocess.Popen([ALGAFLOW, "serve"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(200):
        try:
            httpx.get(f"http://127.0.0.1:{port}/api/v1/health", timeout=0.5)
            break
        except httpx.HTTPError:
            time.sleep(0.1)
    return process, port, tokens


def prepared_requests(units: list[str], frames_per_batch: int, start: datetime, readings: int,
                      wrap: bool = True) -> dict:  # fmt: skip
    """Per unit, request bodies (``{"frames": [...]}``, or the bare list of frames for MQTT when not ``wrap``)
    holding ``readings`` readings in all, and the first frames, for the baseline: built before a clock starts,
    since the client shares the machine with the service and making frames is not what is measured."""
    per_unit = readings // (len(SENSOR_NAMES) * frames_per_batch * len(units)) + 1
    prepared = {}
    for unit in units:
        batches = frame_batches(unit, frames_per_batch, start)
        frames = [next(batches) for _ in range(per_unit)]
        prepared[unit] = ([json.dumps({"frames": batch} if wrap else batch).encode() for batch in frames], frames[:50])
    return prepared


def resident_mib(pid: int) -> float:
    """The process's resident memory (VmRSS), MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def watch(pid: int, port: int, stop: threading.Event, seen: dict) -> None:
    """Sample the service's memory and pipeline backlog until ``stop`` (``seen``: first and highest RSS, MiB,
    and the highest backlog in readings)."""
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5) as http:
        while not stop.wait(0.25):
            rss = resident_mib(pid)
            seen.setdefault("rss_first", rss)
            seen["rss_max"] = max(seen.get("rss_max", 0.0), rss)
            seen["rss_last"] = rss
            try:
                backlog = http.get("/api/v1/health").json()["pipeline_backlog_readings"]
            except httpx.HTTPError:
                continue
            seen["backlog_max"] = max(seen.get("backlog_max", 0), backlog)


def bench_http(seconds: float, frames_per_batch: int, clients: int,
               ceiling: float) -> tuple[float, list[float], list[list[dict]], bool, dict]:  # fmt: skip
    """Readings per second acknowledged, latencies, frames for the baseline, whether the clients ran out of
    prepared requests (``ceiling`` readings per second of them) before ``seconds``, and what :func:`watch`
    saw."""
    with tempfile.TemporaryDirectory() as folder:
        process, port, tokens = start_service(Path(folder), "off", "http")
        units = list(tokens)[:clients]
        prepared = prepared_requests(units, frames_per_batch, datetime.now(UTC) - timedelta(days=2),
                                     int(ceiling * seconds))  # fmt: skip
        per_request = frames_per_batch * len(SENSOR_NAMES)
        latencies: list[float] = []
        readings = [0]
        ran_out = [False]
        lock = threading.Lock()
        stop = time.perf_counter() + seconds

        def client(unit: str) -> None:
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60,
                              headers={"Authorization": f"Bearer {tokens[unit]}",
                                       "Content-Type": "application/json"}) as http:  # fmt: skip
                for body in prepared[unit][0]:
                    if time.perf_counter() > stop:
                        return
                    began = time.perf_counter()
                    response = http.post("/api/v1/frames", content=body)
                    elapsed = time.perf_counter() - began
                    response.raise_for_status()
                    with lock:
                        latencies.append(elapsed)
                        readings[0] += per_request
                ran_out[0] = True

        threads = [threading.Thread(target=client, args=(unit,)) for unit in units]
        seen: dict = {}
        watching = threading.Event()
        watcher = threading.Thread(target=watch, args=(process.pid, port, watching, seen), daemon=True)
        stop = time.perf_counter() + seconds
        began = time.perf_counter()
        watcher.start()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        rate = readings[0] / (time.perf_counter() - began)
        watching.set()
        watcher.join(10)
        process.terminate()
        process.wait(30)
    return rate, latencies, [batch for _, first in prepared.values() for batch in first], ran_out[0], seen


def bench_mqtt(seconds: float, frames_per_message: int, publishers: int, ceiling: float) -> float:
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    group = uuid.uuid4().hex[:8]
    with tempfile.TemporaryDirectory() as folder:
        process, _, tokens = start_service(Path(folder), "external", group)
        time.sleep(1.0)
        start = datetime.now(UTC) - timedelta(days=2)
        acked = {unit: 0 for unit in list(tokens)[:publishers]}
        published = dict.fromkeys(acked, 0)
        lock = threading.Condition()
        window = 20  # messages a publisher may have waiting for the service's ack

        def on_message(client, userdata, message):
            payload = json.loads(message.payload)
            if payload.get("kind") == "ack":
                unit = message.topic.split("/")[1]
                with lock:
                    acked[unit] += sum(last - first + 1 for first, last in payload["seqs"])
                    lock.notify_all()

        clients = []
        for unit in acked:
            client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-pub-{group}-{unit}")
            client.max_inflight_messages_set(200)
            client.on_message = on_message
            client.connect("127.0.0.1", 1883)
            client.subscribe(f"algaflow/{unit}/commands", qos=1)
            client.loop_start()
            clients.append((unit, client))
        prepared = prepared_requests(list(acked), frames_per_message, start, int(ceiling * seconds), wrap=False)
        time.sleep(0.5)
        stop = time.perf_counter() + seconds
        began = time.perf_counter()

        def publish(unit: str, client) -> None:
            for body in prepared[unit][0]:
                with lock:  # flow control, as the agent does: at most `window` messages not yet stored
                    lock.wait_for(lambda: published[unit] - acked[unit] < window * frames_per_message, timeout=30)
                if time.perf_counter() > stop:
                    return
                client.publish(f"algaflow/{unit}/telemetry", body, qos=1).wait_for_publish(30)
                with lock:
                    published[unit] += frames_per_message

        threads = [threading.Thread(target=publish, args=pair) for pair in clients]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        deadline = time.perf_counter() + 60
        while time.perf_counter() < deadline and any(acked[u] < published[u] for u in acked):
            time.sleep(0.01)
        elapsed = time.perf_counter() - began
        total = sum(min(acked[u], published[u]) for u in acked) * len(SENSOR_NAMES)
        for _, client in clients:
            client.disconnect()
            client.loop_stop()
        process.terminate()
        process.wait(30)
    return total / elapsed


def bench_baseline(batches: list[list[dict]]) -> float:
    """Plain SQL: the same rows, sqlite3 executemany, one durable transaction per batch."""
    with tempfile.TemporaryDirectory() as folder:
        connection = sqlite3.connect(f"{folder}/plain.db", isolation_level=None)
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA synchronous=FULL")
        connection.execute("CREATE TABLE readings (unit_id TEXT, sensor TEXT, time_us INTEGER, value REAL, "
                           "PRIMARY KEY (unit_id, sensor, time_us)) WITHOUT ROWID")  # fmt: skip
        rows_total = 0
        began = time.perf_counter()
        for frames in batches:
            rows = [(f["unit_id"], sensor, int(datetime.fromisoformat(f["time"]).timestamp() * 1e6), value)
                    for f in frames for sensor, value in f["readings"].items()]  # fmt: skip
            connection.execute("BEGIN")
            connection.executemany("INSERT OR IGNORE INTO readings VALUES (?, ?, ?, ?)", rows)
            connection.execute("COMMIT")
            rows_total += len(rows)
        rate = rows_total / (time.perf_counter() - began)
        connection.close()
    return rate


def bench_query(units: int, days: float, every_s: int) -> tuple[float, int]:
    from algaflow.store import ReadingBatch, open_store

    with tempfile.TemporaryDirectory() as folder, open_store(f"{folder}/query.db") as store:
        end_us = int(datetime.now(UTC).timestamp()) * 1_000_000
        times = end_us - np.arange(int(days * 86400 / every_s))[::-1] * every_s * 1_000_000
        rng = np.random.default_rng(1)
        rows = 0
        for k in range(units):
            unit = f"u{k:03d}"
            store.register_unit(unit, {})
            for chunk in np.array_split(times, max(1, times.size // 20000)):
                n = chunk.size * len(SENSOR_NAMES)
                store.write_readings(ReadingBatch(np.full(n, unit, dtype=object),
                                                  np.repeat(np.array(SENSOR_NAMES, dtype=object), chunk.size),
                                                  np.tile(chunk, len(SENSOR_NAMES)), rng.normal(10, 1, n),
                                                  np.zeros(n)))  # fmt: skip
                rows += n
        durations = []
        for k in range(20):
            began = time.perf_counter()
            table = store.readings(f"u{k * 7 % units:03d}", SENSOR_NAMES, end_us - 86_400_000_000, end_us + 1, 60)
            durations.append(time.perf_counter() - began)
            assert len(table) >= len(SENSOR_NAMES) * 1440 * 0.99 or every_s > 60
    return float(np.median(durations)), rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--frames-per-request", type=int, default=250)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--ceiling", type=float, default=150_000.0,
                        help="readings per second of prepared requests (HTTP and MQTT)")
    parser.add_argument("--query-units", type=int, default=100)
    parser.add_argument("--query-days", type=float, default=30.0)
    parser.add_argument("--query-every-s", type=int, default=60)
    arguments = parser.parse_args()
    http_rate, latencies, sent, ran_out, seen = bench_http(arguments.seconds, arguments.frames_per_request,
                                                     arguments.clients, arguments.ceiling)  # fmt: skip
    if ran_out:
        print(f"note: the clients sent every request prepared ({arguments.ceiling:,.0f} readings/s) before the "
              "time was up; raise --ceiling")
    baseline = bench_baseline(sent)
    p50, p99 = np.percentile(np.array(latencies) * 1000, [50, 99])
    print(f"HTTP → SQLite: {http_rate:,.0f} readings/s acknowledged; ack latency p50 {p50:.1f} ms, p99 {p99:.1f} ms "
          f"({arguments.frames_per_request} frames × 20 readings per request, {arguments.clients} clients)")
    print(f"service memory {seen.get('rss_first', float('nan')):.0f} MiB at the start, {seen.get('rss_max', 0):.0f} "
          f"MiB at most, {seen.get('rss_last', float('nan')):.0f} MiB at the end; pipeline backlog at most "
          f"{seen.get('backlog_max', 0):,} readings (bound: [pipeline] max_backlog_readings)")
    print(f"plain SQL (sqlite3 executemany, same rows and durability): {baseline:,.0f} readings/s")
    mqtt_rate = bench_mqtt(arguments.seconds, 50, arguments.clients, arguments.ceiling)
    print(f"MQTT QoS 1 via Mosquitto → SQLite: {mqtt_rate:,.0f} readings/s acknowledged (50 frames per message)")
    query_s, rows = bench_query(arguments.query_units, arguments.query_days, arguments.query_every_s)
    print(f"query: last 24 h of 20 sensors at 1 min from {rows:,} readings ({arguments.query_units} units × "
          f"{arguments.query_days:g} days every {arguments.query_every_s} s): {query_s * 1000:.1f} ms (median of 20)")
    print(f"ingest: {http_rate / baseline:.2f}x vs plain SQL bulk insert (HTTP {http_rate:,.0f}/s, MQTT "
          f"{mqtt_rate:,.0f}/s, plain {baseline:,.0f}/s readings; p99 ack {p99:.0f} ms; 24 h query "
          f"{query_s * 1000:.0f} ms)")


if __name__ == "__main__":
    main()
