"""Layers point one way (DESIGN.md §2): the numeric core imports no web, database or broker library, and the
store imports nothing of the numeric core."""

import subprocess
import sys

FORBIDDEN_IN_CORE = ("psycopg", "sqlite3", "fastapi", "starlette", "uvicorn", "paho", "amqtt", "dash", "httpx")


def imported_by(modules: list[str]) -> set[str]:
    code = f"import sys; import {', '.join(modules)}; print('\\n'.join(sys.modules))"
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    return {name.split(".")[0] for name in output.split()} | set(output.split())


def test_the_numeric_core_imports_no_web_database_or_broker_library():
    loaded = imported_by(["algaflow.model.reactor", "algaflow.sim.simulate", "algaflow.fusion.estimator",
                          "algaflow.control.harvest"])  # fmt: skip
    assert not loaded & set(FORBIDDEN_IN_CORE)


def test_the_store_does_not_reach_into_the_numeric_core():
    loaded = imported_by(["algaflow.store", "algaflow.store.sqlite", "algaflow.store.postgres"])
    assert not {m for m in loaded if m.startswith(("algaflow.model", "algaflow.sim", "algaflow.fusion"))}
