"""The HTTP API against its own OpenAPI document: the schemathesis CLI, with every check it has (no 5xx,
each status, header and body as documented, schema-valid requests accepted, schema-invalid ones refused,
Allow on 405 ...) and all its phases (examples, coverage, fuzzing, stateful), against ``algaflow serve`` over
SQLite and over PostgreSQL. ALGAFLOW_SCHEMA_EXAMPLES sets the examples per operation (default 60: a few
thousand requests per backend). Generated times lie in the past (schemathesis_hooks.py)."""

import os
import re
import subprocess
import sys
from pathlib import Path

from algaflow.service.auth import issue_user_token
from algaflow.store import open_store
from tests.service.conftest import free_port, serve

EXAMPLES = os.environ.get("ALGAFLOW_SCHEMA_EXAMPLES", "60")
ROOT = Path(__file__).resolve().parents[2]
SCHEMATHESIS = str(Path(sys.executable).with_name("schemathesis"))


def test_the_api_answers_every_generated_request_as_its_openapi_document_says(store_url, tmp_path):
    with open_store(store_url) as store:
        store.register_unit("r1", {"strain": "chlorella_vulgaris"})
        admin = issue_user_token(store, "admin")
    port = free_port()
    env = {**os.environ, "ALGAFLOW_STORE__URL": store_url, "ALGAFLOW_MQTT__MODE": "off",
           "ALGAFLOW_HTTP__PORT": str(port), "ALGAFLOW_LIMITS__REQUESTS_PER_SECOND": "100000",
           "ALGAFLOW_LIMITS__BURST": "100000", "ALGAFLOW_LAKE__COMPACT_EVERY_S": "0"}  # fmt: skip
    server = serve(env, port)
    try:
        run = subprocess.run([SCHEMATHESIS, "run", f"http://127.0.0.1:{port}/api/v1/openapi.json", "--checks", "all",
                              "-H", f"Authorization: Bearer {admin}", "--max-examples", EXAMPLES, "--seed", "1",
                              "--no-color", "--report-dir", str(tmp_path / "report")],
                             env={**os.environ, "SCHEMATHESIS_HOOKS": "tests.service.schemathesis_hooks",
                                  "PYTHONPATH": str(ROOT)}, cwd=ROOT, capture_output=True, text=True,
                             timeout=900)  # fmt: skip
    finally:
        server.terminate()
        server.wait(30)
    summary = run.stdout[-6000:]
    assert run.returncode == 0, summary
    assert server.returncode == 0 or server.returncode < 0  # it ran to the end, stopped by us
    generated = re.search(r"(\d+) generated, (\d+) passed", summary)
    assert generated and int(generated[1]) >= 1000 and generated[1] == generated[2], summary  # a few thousand, all
