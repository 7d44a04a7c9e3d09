import os
import socket

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
