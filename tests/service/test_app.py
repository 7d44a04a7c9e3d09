"""The HTTP API: auth, limits, clear refusals, queries and export."""

import hashlib
import io
import json
import zipfile
from datetime import UTC, datetime, timedelta

import pandas as pd

from tests.service.conftest import bearer

T0 = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(days=1)


def frames(unit: str, count: int, first_seq: int = 0) -> list[dict]:
    return [{"unit_id": unit, "time": (T0 + timedelta(minutes=k)).isoformat(), "seq": first_seq + k,
             "readings": {"od750": 0.2 + 0.001 * k, "temp_tank": 25.0, "do_tank": 8.0}}
            for k in range(first_seq, first_seq + count)]  # fmt: skip


def test_a_device_writes_its_own_unit_and_resends_are_harmless(service):
    client, tokens = service.client, service.tokens
    response = client.post("/api/v1/frames", json={"frames": frames("r1", 50)}, headers=bearer(tokens["r1"]))
    assert response.status_code == 200, response.text
    assert response.json() == {"new_frames": 50, "new_readings": 150, "new_events": 0,
                               "acknowledged": {"r1": [[0, 49]]}}  # fmt: skip
    again = client.post("/api/v1/frames", json={"frames": frames("r1", 60)}, headers=bearer(tokens["r1"]))
    assert again.json()["new_frames"] == 10 and again.json()["acknowledged"] == {"r1": [[0, 59]]}
    assert len(service.store.readings("r1")) == 180


def test_tokens_are_checked_and_stored_hashed(service):
    client, tokens, store = service.client, service.tokens, service.store
    forbidden = client.post("/api/v1/frames", json={"frames": frames("r2", 3)}, headers=bearer(tokens["r1"]))
    assert forbidden.status_code == 403 and "r2" in forbidden.json()["detail"]
    mixed = frames("r1", 2) + frames("r2", 2)
    assert client.post("/api/v1/frames", json={"frames": mixed}, headers=bearer(tokens["r1"])).status_code == 403
    assert len(store.readings("r1")) == 0 and len(store.readings("r2")) == 0  # nothing of a refused batch
    assert client.post("/api/v1/frames", json={"frames": frames("r1", 2)}).status_code == 401
    assert client.post("/api/v1/frames", json={"frames": frames("r1", 2)},
                       headers=bearer("afd_not-a-token")).status_code == 401  # fmt: skip
    assert client.get("/api/v1/units").status_code == 401
    refused = client.get("/api/v1/units/r1/readings", headers=bearer(tokens["r1"]))
    assert refused.status_code == 403 and "user token" in refused.json()["detail"]
    assert client.get("/api/v1/units/r1/readings", headers=bearer(tokens["reader"])).status_code == 200
    assert client.post("/api/v1/units", json={"unit_id": "r3"}, headers=bearer(tokens["reader"])).status_code == 403
    stored = store.tokens()
    assert set(stored) == {hashlib.sha256(t.encode()).hexdigest() for t in tokens.values()}
    text = json.dumps(stored)
    assert not any(token in text for token in tokens.values())


def test_admin_registers_units_and_issues_tokens(service):
    client, admin = service.client, bearer(service.tokens["admin"])
    bad = client.post("/api/v1/units", json={"unit_id": "r3", "strain": "kelp"}, headers=admin)
    assert bad.status_code == 422 and "unknown strain 'kelp'" in bad.json()["detail"]
    created = client.post("/api/v1/units", json={"unit_id": "r3", "sensors": ["od750", "ph_tank"],
                                                 "site": {"name": "Almería", "latitude": 36.8}}, headers=admin)
    assert created.status_code == 201
    issued = client.post("/api/v1/tokens", json={"kind": "device", "unit_id": "r3"}, headers=admin).json()
    posted = client.post("/api/v1/frames", json={"frames": frames("r3", 2)}, headers=bearer(issued["token"]))
    assert posted.status_code == 200
    assert client.post("/api/v1/tokens", json={"kind": "device", "unit_id": "ghost"},
                       headers=admin).status_code == 404  # fmt: skip


def test_refusals_are_clear_4xx(service):
    client, device = service.client, bearer(service.tokens["r1"])
    unknown = [{"unit_id": "r1", "time": T0.isoformat(), "seq": 0, "readings": {"od999": 1.0}}]
    answer = client.post("/api/v1/frames", json={"frames": unknown}, headers=device)
    assert answer.status_code == 422 and "unknown sensor" in answer.json()["detail"]
    naive = [{"unit_id": "r1", "time": "2026-11-01T00:00:00", "seq": 0, "readings": {}}]
    assert "time zone" in client.post("/api/v1/frames", json={"frames": naive}, headers=device).json()["detail"]
    large = client.post("/api/v1/frames", content=b"{" + b" " * 300_000 + b"}", headers=device)
    assert large.status_code == 413 and "limit" in large.json()["detail"]
    ghost = client.post("/api/v1/frames", json={"frames": frames("ghost", 1)}, headers=bearer(service.tokens["admin"]))
    assert ghost.status_code == 404 and "not registered" in ghost.json()["detail"]
    assert client.post("/api/v1/frames", content=b"not json", headers=device).status_code == 422
    assert len(service.store.readings("r1")) == 0


def test_rate_limit_answers_429_with_retry_after(service):
    from fastapi.testclient import TestClient

    from algaflow.service.app import create_app

    settings = service.settings.model_copy(update={"limits": service.settings.limits.model_copy(
        update={"requests_per_second": 2.0, "burst": 20})})  # fmt: skip
    client = TestClient(create_app(settings, service.ingestor))
    reader, other = bearer(service.tokens["reader"]), bearer(service.tokens["admin"])
    statuses = [client.get("/api/v1/units", headers=reader).status_code for _ in range(25)]
    assert statuses[:20] == [200] * 20 and statuses.count(429) >= 4
    limited = client.get("/api/v1/units", headers=reader)
    assert limited.status_code == 429 and int(limited.headers["Retry-After"]) >= 1
    assert "too many requests" in limited.json()["detail"]
    assert client.get("/api/v1/units", headers=other).status_code == 200  # per token


def test_queries_downsample_and_export_with_a_manifest(service):
    client, tokens = service.client, service.tokens
    client.post("/api/v1/frames", json={"frames": frames("r1", 120)}, headers=bearer(tokens["r1"]))
    event = {"event": {"kind": "dry_weight_sample", "params": {"g_per_l": 0.41}}, "time": T0.isoformat()}
    assert client.post("/api/v1/units/r1/events", json=event, headers=bearer(tokens["reader"])).status_code == 403
    assert client.post("/api/v1/units/r1/events", json=event, headers=bearer(tokens["r1"])).status_code == 201
    reader = bearer(tokens["reader"])
    hourly = client.get("/api/v1/units/r1/readings", params={"sensors": "od750", "every_s": 3600},
                        headers=reader).json()  # fmt: skip
    assert hourly["count"] == [60, 60] and hourly["sensor"] == ["od750", "od750"]
    assert abs(hourly["mean"][0] - (0.2 + 0.001 * 29.5)) < 1e-9
    assert client.get("/api/v1/units/r1/readings", params={"sensors": "od999"}, headers=reader).status_code == 422
    assert client.get("/api/v1/units/ghost/readings", headers=reader).status_code == 404
    assert len(client.get("/api/v1/units/r1/estimates", headers=reader).json()["time"]) == 120
    archive = zipfile.ZipFile(io.BytesIO(client.get("/api/v1/units/r1/export", headers=reader).content))
    manifest = json.loads(archive.read("manifest.json"))
    assert manifest["files"]["telemetry.parquet"]["rows"] == 361  # 3 sensors × 120 + the dry weight
    content = archive.read("telemetry.parquet")
    assert hashlib.sha256(content).hexdigest() == manifest["files"]["telemetry.parquet"]["sha256"]
    telemetry = pd.read_parquet(io.BytesIO(content))
    assert list(telemetry.columns[:4]) == ["unit_id", "time", "sensor", "value"]
    assert telemetry[telemetry.sensor == "dry_weight"].value.tolist() == [0.41]
    csv = zipfile.ZipFile(io.BytesIO(client.get("/api/v1/units/r1/export", params={"format": "csv"},
                                                headers=reader).content))  # fmt: skip
    assert "events.csv" in csv.namelist()


def test_the_openapi_document_is_3_1_and_names_the_routes(service):
    spec = service.client.get("/api/v1/openapi.json").json()
    assert spec["openapi"].startswith("3.1")
    assert {"/api/v1/frames", "/api/v1/units", "/api/v1/units/{unit_id}/readings",
            "/api/v1/units/{unit_id}/export", "/api/v1/tokens"} <= set(spec["paths"])  # fmt: skip
