import contextlib
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from algaflow.service.auth import issue_device_token, issue_user_token
from algaflow.service.config import Settings
from algaflow.service.server import Service


@pytest.fixture
def service(store_url):
    """The service's app over a fresh store of each backend (HTTP only), with a unit r1, r2 and tokens."""
    settings = Settings.model_validate({"store": {"url": store_url}, "mqtt": {"mode": "off"},
                                        "limits": {"max_request_bytes": 200_000, "requests_per_second": 1000,
                                                   "burst": 1000}})  # fmt: skip
    running = Service(settings)
    for unit in ("r1", "r2"):
        running.store.register_unit(unit, {"strain": "chlorella_vulgaris", "volume_l": 80.0})
    running.tokens = {"r1": issue_device_token(running.store, "r1"), "r2": issue_device_token(running.store, "r2"),
                      "reader": issue_user_token(running.store, "reader"),
                      "admin": issue_user_token(running.store, "admin")}  # fmt: skip
    running.client = TestClient(running.app, raise_server_exceptions=False)
    yield running
    running.store.close()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


ALGAFLOW = str(Path(sys.executable).with_name("algaflow"))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def served(app) -> Iterator[str]:
    """``app`` served by uvicorn on a free local port in a thread, for as long as the block runs; yields its URL."""
    import uvicorn

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 20
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.02)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def serve(env: dict, port: int) -> subprocess.Popen:
    """``algaflow serve`` in its own process (its configuration from ``env``), once /health answers."""
    process = subprocess.Popen([ALGAFLOW, "serve"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(300):
        try:
            httpx.get(f"http://127.0.0.1:{port}/api/v1/health", timeout=0.5)
            return process
        except httpx.HTTPError:
            time.sleep(0.1)
    raise RuntimeError("the service did not start")


def bridged_service(tmp_path, prefix: str, metadata: dict) -> tuple[Service, str]:
    """A service (not yet started) bridged to the Mosquitto on 127.0.0.1:1883 in a shared group of its own,
    with one fresh unit registered; returns it and the unit id."""
    settings = Settings.model_validate({"store": {"url": str(tmp_path / f"{prefix}.db")},
                                        "mqtt": {"mode": "external", "port": 1883,
                                                 "shared_group": f"{prefix}{uuid.uuid4().hex[:8]}"}})  # fmt: skip
    service = Service(settings)
    unit = f"{prefix}-{uuid.uuid4().hex[:8]}"
    service.store.register_unit(unit, metadata)
    return service, unit
