import os
import socket
import uuid

import pytest


def _reachable(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


@pytest.fixture
def require_service():
    """Skip (or fail in CI, ALGAFLOW_REQUIRE_SERVICES=1) when a local service is not running."""

    def check(name: str, port: int) -> None:
        if _reachable(port):
            return
        message = f"{name} is not running on 127.0.0.1:{port}"
        if os.environ.get("ALGAFLOW_REQUIRE_SERVICES") == "1":
            pytest.fail(message + " (ALGAFLOW_REQUIRE_SERVICES=1)")
        pytest.skip(message)

    return check


POSTGRES = "postgresql://postgres@127.0.0.1:5432/test"


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request, tmp_path, require_service):
    """Each store backend in turn: SQLite in a temporary file, PostgreSQL on 127.0.0.1:5432 in a schema of its
    own, dropped afterwards (skipped with a reason where PostgreSQL is not running, failed in CI)."""
    if request.param == "sqlite":
        yield str(tmp_path / "store" / "algaflow.db")
        return
    require_service("PostgreSQL", 5432)
    import psycopg

    schema = f"test_{uuid.uuid4().hex[:12]}"
    yield f"{POSTGRES}?schema={schema}"
    with psycopg.connect(POSTGRES, autocommit=True) as connection:
        connection.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
