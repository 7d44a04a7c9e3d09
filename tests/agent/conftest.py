from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from algaflow.agent.drivers import Driver
from algaflow.service.auth import issue_device_token
from algaflow.service.config import Settings
from algaflow.service.server import Service

T0 = datetime.now(UTC) - timedelta(hours=1)


def samples(count: int, bad: frozenset[int] = frozenset()) -> list:
    """``count`` frames' samples a second apart; those at the indices in ``bad`` hold an infinite od750 (the
    outbox writes it as ``Infinity``, which the service refuses)."""
    return [(T0 + timedelta(seconds=k), {"od750": float("inf") if k in bad else 0.5 + 0.001 * k}, [])
            for k in range(count)]  # fmt: skip


class Idle(Driver):
    """A driver with nothing (more) to read: the outbox holds all there is."""

    finished = True

    def poll(self, now: datetime) -> list:
        return []


class FakeMessage:
    """What paho hands ``on_message``: a topic and a payload."""

    def __init__(self, topic: str, payload: bytes) -> None:
        self.topic, self.payload = topic, payload


@pytest.fixture
def make_service(tmp_path):
    """The real service (HTTP only, SQLite store, no live pipeline) with ``limits`` overridden, units r1 and r2,
    their device tokens in ``.tokens`` and a TestClient in ``.client``."""
    made = []

    def make(**limits) -> Service:
        settings = Settings.model_validate({"store": {"url": str(tmp_path / f"service{len(made)}.db")},
                                            "mqtt": {"mode": "off"}, "pipeline": {"enabled": False},
                                            "limits": limits})  # fmt: skip
        running = Service(settings)
        running.tokens = {}
        for unit in ("r1", "r2"):
            running.store.register_unit(unit, {})
            running.tokens[unit] = issue_device_token(running.store, unit)
        running.client = TestClient(running.app, raise_server_exceptions=False)
        made.append(running)
        return running

    yield make
    for running in made:
        running.client.close()
        running.store.close()


@pytest.fixture
def service(make_service):
    return make_service()
