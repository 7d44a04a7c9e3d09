import pytest
from fastapi.testclient import TestClient

from algaflow.service.auth import issue_device_token, issue_user_token
from algaflow.service.config import Settings
from algaflow.service.server import Service


@pytest.fixture
def service(tmp_path):
    """The service's app over a fresh SQLite store (HTTP only), with a unit r1, r2 and tokens."""
    settings = Settings.model_validate({"store": {"url": str(tmp_path / "algaflow.db")}, "mqtt": {"mode": "off"},
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
