"""Layers point one way (DESIGN.md §2): the numeric core imports no web, database or broker library, and the
store imports nothing of the numeric core."""

import ast
import json
import pkgutil
import subprocess
import sys
from pathlib import Path

import algaflow.dashboard

FORBIDDEN_IN_CORE = ("psycopg", "sqlite3", "fastapi", "starlette", "uvicorn", "paho", "amqtt", "dash", "httpx")
CORE = ("algaflow.catalog", "algaflow.model", "algaflow.sim", "algaflow.fusion", "algaflow.control")
ABOVE_CORE = ("algaflow.store", "algaflow.service", "algaflow.dashboard")  # pandas is allowed

# In a fresh interpreter: import every module of the packages, and name for each forbidden module the algaflow
# module nearest on the stack when it was first imported (who pulled it in).
IMPORT_ALL = """
import importlib, json, pkgutil, sys
packages, tops, prefixes = json.loads(sys.argv[1])
pulled = {}
class Watch:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in tops or any(name == p or name.startswith(p + ".") for p in prefixes):
            frame = sys._getframe(1)
            while frame is not None and not frame.f_globals.get("__name__", "").startswith("algaflow."):
                frame = frame.f_back
            pulled.setdefault(name, "?" if frame is None else frame.f_globals["__name__"])
sys.meta_path.insert(0, Watch())
modules = []
for package in packages:
    modules.append(importlib.import_module(package).__name__)
    for info in pkgutil.walk_packages(sys.modules[package].__path__, package + "."):
        modules.append(importlib.import_module(info.name).__name__)
print(json.dumps({"modules": modules, "pulled": pulled}))
"""


def imported_by(modules: list[str]) -> set[str]:
    code = f"import sys; import {', '.join(modules)}; print('\\n'.join(sys.modules))"
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    return {name.split(".")[0] for name in output.split()} | set(output.split())


def test_the_numeric_core_imports_no_web_database_or_broker_library():
    loaded = imported_by(["algaflow.model.reactor", "algaflow.sim.simulate", "algaflow.fusion.estimator",
                          "algaflow.control.harvest"])  # fmt: skip
    assert not loaded & set(FORBIDDEN_IN_CORE)


def test_no_module_of_the_catalog_or_numeric_core_imports_a_web_store_or_broker_library():
    """Every module of catalog, model, sim, fusion and control (pkgutil), all in one interpreter: none of them
    pulls in a web, database or broker library, nor the store, the service or the dashboard."""
    argument = json.dumps([CORE, FORBIDDEN_IN_CORE, ABOVE_CORE])
    result = subprocess.run([sys.executable, "-c", IMPORT_ALL, argument], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout)
    assert len(found["modules"]) > 40 and "algaflow.fusion.calibration" in found["modules"]
    pulled = found["pulled"]
    first = {name: importer for name, importer in pulled.items() if name.rpartition(".")[0] not in pulled}
    assert not pulled, "forbidden import ← the algaflow module that pulled it in: " + ", ".join(
        f"{name} ← {importer}" for name, importer in sorted(first.items()))  # fmt: skip


def test_the_store_does_not_reach_into_the_numeric_core():
    loaded = imported_by(["algaflow.store", "algaflow.store.sqlite", "algaflow.store.postgres"])
    assert not {m for m in loaded if m.startswith(("algaflow.model", "algaflow.sim", "algaflow.fusion"))}


def direct_imports(path: Path, package: str) -> set[str]:
    """The modules a source file names in its import statements, anywhere in it (function-level ones too):
    ``from a.b import c`` names a.b and a.b.c (c may be a module); relative imports resolved in ``package``."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{parent}.{base}" if base else parent
            names |= {base} | {f"{base}.{alias.name}" for alias in node.names}
    return names


def test_the_dashboard_imports_no_estimator():
    """The dashboard shows what the live pipeline estimated; no dashboard module imports fusion.estimator itself
    (it may use the service, whose pipeline runs the estimator)."""
    offenders = []
    for info in pkgutil.walk_packages(algaflow.dashboard.__path__, "algaflow.dashboard."):
        path = Path(info.module_finder.path) / info.name.rsplit(".", 1)[-1]
        path = path / "__init__.py" if info.ispkg else path.with_suffix(".py")
        if "algaflow.fusion.estimator" in direct_imports(path, "algaflow.dashboard"):
            offenders.append(info.name)
    assert offenders == []
