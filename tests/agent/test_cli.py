"""`algaflow agent --status` and `--requeue-dead-letters` read the outbox without running the agent; a run
ends with what was acknowledged, what waits and the dead letters; errors are one line."""

import json
import sqlite3

from typer.testing import CliRunner

from algaflow.agent.outbox import Outbox
from algaflow.cli.main import app
from tests.agent.conftest import samples
from tests.service.conftest import served


def agent(*arguments: str):
    return CliRunner().invoke(app, ["agent", "--unit", "r1", *arguments])


def test_status_shows_waiting_sent_dead_letters_and_next_seq_and_requeue_moves_them_back(tmp_path):
    path = tmp_path / "outbox.db"
    outbox = Outbox(path, "r1")
    outbox.put_many(samples(10))
    outbox.mark_sent([0, 1, 2, 3])
    outbox.dead_letter([[2, 2]], "HTTP 422", "the request is not valid: body.frames.0.readings: not finite")
    outbox.close()
    result = agent("--outbox", str(path), "--status")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert "frames waiting: 9 (3 sent, not acknowledged)" in lines and "dead letters: 1" in lines
    assert any(line.split()[:4] == ["seq", "2", "HTTP", "422"] and line.endswith("not finite") for line in lines)
    assert "next seq: 10" in lines
    result = agent("--outbox", str(path), "--requeue-dead-letters", "--status")
    assert result.exit_code == 0, result.output
    assert "1 dead letters moved back" in result.output and "frames waiting: 10 (3 sent" in result.output
    assert "dead letters: 0" in result.output.splitlines()


def test_status_opens_an_outbox_of_the_older_agent(tmp_path):
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as old:
        old.executescript("CREATE TABLE outbox (seq INTEGER PRIMARY KEY, payload TEXT NOT NULL, "
                          "sent_at REAL NOT NULL DEFAULT 0);"
                          "CREATE TABLE counter (unit_id TEXT PRIMARY KEY, next_seq INTEGER NOT NULL);"
                          "INSERT INTO outbox VALUES (7, '{}', 1.0e9), (8, '{}', 0);"
                          "INSERT INTO counter VALUES ('r1', 9);")  # fmt: skip
    old.close()
    result = agent("--outbox", str(path), "--status")
    assert result.exit_code == 0, result.output
    assert "frames waiting: 2 (1 sent, not acknowledged)" in result.output and "next seq: 9" in result.output


def test_status_of_a_missing_or_broken_outbox_is_a_one_line_error(tmp_path):
    result = agent("--outbox", str(tmp_path / "none.db"), "--status")
    assert result.exit_code == 2 and isinstance(result.exception, SystemExit) and "no outbox at" in result.output
    assert not (tmp_path / "none.db").exists()
    (tmp_path / "junk.db").write_text("not a database, " * 100)
    result = agent("--outbox", str(tmp_path / "junk.db"), "--status")
    assert result.exit_code == 2 and isinstance(result.exception, SystemExit)  # _fail, no traceback
    assert "cannot open the outbox" in result.output and "file is not a database" in " ".join(result.output.split())
    with sqlite3.connect(tmp_path / "other.db") as other:  # a SQLite file, not an outbox: left as it is
        other.execute("CREATE TABLE readings (x)")
    other.close()
    result = agent("--outbox", str(tmp_path / "other.db"), "--requeue-dead-letters")
    assert result.exit_code == 2 and "is not an agent outbox" in " ".join(result.output.split())
    with sqlite3.connect(tmp_path / "other.db") as other:
        assert [row[0] for row in other.execute("SELECT name FROM sqlite_master")] == ["readings"]
    other.close()


def test_a_replay_with_an_infinite_reading_drains_over_http_and_reports_the_dead_letter(tmp_path, service):
    rows = ["time,sensor,value"] + [f"2026-01-01T00:{k // 60:02d}:{k % 60:02d}Z,od750,{'inf' if k == 9 else 0.5}"
                                    for k in range(1000)]  # fmt: skip
    (tmp_path / "replay.csv").write_text("\n".join(rows) + "\n")
    with served(service.app) as url:
        result = agent("--driver", "replay", "--file", str(tmp_path / "replay.csv"), "--transport", "http",
                       "--url", url, "--token", service.tokens["r1"], "--outbox", str(tmp_path / "outbox.db"),
                       "--speed", "1e9", "--backfill-days", "1", "--until-drained")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "999 frames acknowledged, 0 waiting, 1 dead letters" in " ".join(result.output.split())
    assert len(service.store.frame_log("r1")) == 999
    result = agent("--outbox", str(tmp_path / "outbox.db"), "--status")
    assert "dead letters: 1" in result.output and "seq 9  HTTP 422" in result.output
    outbox = Outbox(tmp_path / "outbox.db", "r1")
    assert json.loads(outbox.dead_letters()[0].payload)["readings"]["od750"] == float("inf")  # kept as it was
    outbox.close()
