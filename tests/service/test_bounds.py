"""Bounded work and honest limits (issue 19): the pipeline's queue is bounded and ingest waits for it
(back-pressure) instead of growing memory; /health and /metrics report the backlog; an oversized chunked
body gets 413; tokens may expire; after a restart HTTP answers at once while the replay runs behind it."""

import threading
import time
from datetime import UTC, datetime, timedelta

import numpy as np
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from algaflow.service.auth import issue_device_token, issue_user_token
from algaflow.service.config import PipelineSettings, Settings
from algaflow.service.pipeline import LivePipeline
from algaflow.service.server import Service
from algaflow.store import ReadingBatch, open_store
from algaflow.store.base import to_time_us
from tests.service.conftest import bearer

T0 = datetime.now(UTC) - timedelta(days=3)


def od_batch(unit: str, first_minute: int, count: int) -> ReadingBatch:
    times = to_time_us(T0) + 60_000_000 * np.arange(first_minute, first_minute + count, dtype=np.int64)
    return ReadingBatch(np.full(count, unit, dtype=object), np.full(count, "od750", dtype=object), times,
                        0.3 + 1e-5 * np.arange(count), np.zeros(count))  # fmt: skip


def test_a_full_queue_makes_submit_wait_until_the_worker_has_room(tmp_path):
    with open_store(tmp_path / "s.db") as store:
        store.register_unit("r1", {"strain": "chlorella_vulgaris"})
        pipeline = LivePipeline(store, PipelineSettings(max_backlog_readings=1000))
        pipeline.start()
        done: list[int] = []
        with pipeline._lock:  # the worker is busy: it cannot take the next batch
            pipeline.submit(od_batch("r1", 0, 10), [])  # taken by the worker, which then waits for the lock
            time.sleep(0.2)
            for k in range(2):  # 800 readings wait: within the bound
                pipeline.submit(od_batch("r1", 10 + 400 * k, 400), [])
            third = threading.Thread(target=lambda: (pipeline.submit(od_batch("r1", 810, 400), []), done.append(1)))
            third.start()
            time.sleep(0.5)
            assert not done and pipeline.queued_readings == 810  # 1,210 would pass the bound: it waits
        third.join(30)
        pipeline.wait()
        assert done == [1] and pipeline.queued_readings == 0 and pipeline.backlog == 0
        assert len(store.estimates("r1")) == 1210  # nothing was dropped, only delayed
        pipeline.stop()


def test_back_pressure_reaches_http_and_health_and_metrics_report_the_backlog(tmp_path):
    settings = Settings.model_validate(
        {
            "store": {"url": str(tmp_path / "s.db")},
            "mqtt": {"mode": "off"},
            "pipeline": {"max_backlog_readings": 300},
            "lake": {"compact_every_s": 0},
        }
    )
    service = Service(settings)
    service.store.register_unit("r1", {"strain": "chlorella_vulgaris"})
    device = issue_device_token(service.store, "r1")
    service.start()
    service.pipeline.wait()
    client = TestClient(service.app)
    frames = [{"unit_id": "r1", "time": (T0 + timedelta(minutes=k)).isoformat(), "seq": k,
               "readings": {"od750": 0.3, "temp_tank": 25.0}} for k in range(600)]  # fmt: skip
    answered: list[int] = []
    try:
        with service.pipeline._lock:
            first = client.post("/api/v1/frames", json={"frames": frames[:100]}, headers=bearer(device))
            assert first.status_code == 200  # 200 readings wait: acknowledged at once
            time.sleep(0.2)
            second = client.post("/api/v1/frames", json={"frames": frames[100:150]}, headers=bearer(device))
            assert second.status_code == 200  # 100 more: still within the bound
            late = threading.Thread(
                target=lambda: answered.append(
                    client.post("/api/v1/frames", json={"frames": frames[150:300]}, headers=bearer(device)).status_code
                )
            )
            late.start()
            time.sleep(0.5)
            assert answered == []  # stored, but not yet acknowledged: the agent keeps it and slows down
            health = client.get("/api/v1/health").json()
            # submitted and not yet processed: the 200 the worker holds and the 100 queued behind them
            assert health["pipeline_backlog_readings"] == 300 and health["pipeline_backlog"] == 1
            families = {f.name: f for f in text_string_to_metric_families(client.get("/api/v1/metrics").text)}
            assert families["algaflow_pipeline_backlog_readings"].samples[0].value == 300
            assert families["algaflow_frames_stored"].samples[0].value == 300  # the third batch is stored
        late.join(30)
        assert answered == [200]
        service.pipeline.wait()
        families = {f.name: f for f in text_string_to_metric_families(client.get("/api/v1/metrics").text)}
        assert families["algaflow_pipeline_backlog_readings"].samples[0].value == 0
        assert families["algaflow_readings_stored"].samples[0].value == 600
    finally:
        service.stop()


def test_an_oversized_chunked_body_gets_413_and_an_expired_token_401(service):
    client, device = service.client, bearer(service.tokens["r1"])

    def chunks():
        for _ in range(50):
            yield b" " * 10_000  # 500 kB against the fixture's 200 kB limit, without a Content-Length

    response = client.post("/api/v1/frames", content=chunks(), headers={**device, "Content-Type": "application/json"})
    assert response.status_code == 413 and "limit" in response.json()["detail"]
    brief = issue_user_token(service.store, "reader", "brief", expires_in_s=0.5)
    assert client.get("/api/v1/units", headers=bearer(brief)).status_code == 200
    time.sleep(0.6)
    expired = client.get("/api/v1/units", headers=bearer(brief))
    assert expired.status_code == 401
    admin = bearer(service.tokens["admin"])
    issued = client.post("/api/v1/tokens", json={"kind": "user", "role": "reader", "expires_in_s": 3600}, headers=admin)
    assert issued.status_code == 201
    record = next(r for r in service.store.tokens().values() if "expires_us" in r and r["label"] == "")
    assert abs(record["expires_us"] / 1e6 - (time.time() + 3600)) < 60


def test_after_a_restart_http_answers_at_once_while_the_replay_runs_behind_it(tmp_path):
    """A month of one unit's od750 at 1 min (43,200 readings) and no checkpoint: the replay and the chain's
    compilation take seconds; HTTP does not wait for them."""
    path = tmp_path / "s.db"
    with open_store(path) as store:
        store.register_unit("r1", {"strain": "chlorella_vulgaris"})
        store.write_readings(od_batch("r1", -40_000, 43_200))
    service = Service(Settings.model_validate({"store": {"url": str(path)}, "mqtt": {"mode": "off"},
                                               "lake": {"compact_every_s": 0}}))  # fmt: skip
    began = time.monotonic()
    service.start()
    client = TestClient(service.app)
    health = client.get("/api/v1/health").json()
    answered_s = time.monotonic() - began
    try:
        assert answered_s < 3.0 and health["status"] == "ok"
        service.pipeline.wait()
        replay_s = time.monotonic() - began
        assert client.get("/api/v1/health").json()["pipeline_restoring"] is False
        assert len(service.store.estimates("r1")) == 43_200
        print(f"health answered {answered_s:.2f} s after start; the replay ended after {replay_s:.1f} s")
    finally:
        service.stop()
