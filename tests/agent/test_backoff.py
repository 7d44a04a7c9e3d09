"""Failed sends are retried after an exponential backoff with full jitter, at least the server's Retry-After,
reset by a success; the service refusing the device (bad token) dead-letters nothing."""

import itertools
import logging

import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from fastapi.testclient import TestClient

from algaflow.agent.agent import Agent
from algaflow.agent.outbox import Outbox
from algaflow.agent.transport import HttpTransport
from tests.agent.conftest import Idle, samples


class FakeTime:
    """A clock that only ``sleep`` moves."""

    def __init__(self) -> None:
        self.now = 0.0

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def scripted_server(fake: FakeTime, answers: list[tuple[int, dict]]) -> tuple[TestClient, list[float]]:
    """A frames endpoint that answers ``answers`` in turn (then acknowledges what it gets) and notes the fake time
    of every request."""
    app, hits = FastAPI(), []

    @app.post("/api/v1/frames")
    async def frames(request: Request) -> JSONResponse:
        hits.append(fake.now)
        if len(hits) <= len(answers):
            status, headers = answers[len(hits) - 1]
            return JSONResponse({"detail": f"answer {status}"}, status_code=status, headers=headers)
        seqs = [frame["seq"] for frame in (await request.json())["frames"]]
        return JSONResponse({"new_frames": len(seqs), "new_readings": len(seqs), "new_events": 0,
                             "acknowledged": {"r1": [[min(seqs), max(seqs)]]}})  # fmt: skip

    return TestClient(app), hits


def test_a_failing_server_is_retried_with_exponential_backoff_reset_by_a_success(tmp_path):
    fake = FakeTime()
    client, hits = scripted_server(fake, [(503, {})] * 9)
    outbox = Outbox(tmp_path / "outbox.db", "r1")
    outbox.put_many(samples(10))
    agent = Agent(Idle(), outbox, HttpTransport("http://unused", "token", client=client), clock=fake.clock,
                  sleep=fake.sleep, rand=lambda: 1.0)  # the jitter's upper end  # fmt: skip
    agent.run(until_drained=True)
    gaps = [later - earlier for earlier, later in itertools.pairwise(hits)]
    expected = [0.5, 1, 2, 4, 8, 16, 32, 60, 60]  # doubling from 0.5 s up to the 60 s cap
    assert len(gaps) == len(expected)
    assert all(want <= gap < want + agent.poll_interval_s + 1e-6 for gap, want in zip(gaps, expected, strict=True))
    assert outbox.pending() == 0 and outbox.dead_count() == 0
    assert agent.failures == 0 and agent.retry_at == 0.0  # the success reset the backoff
    agent.failures = 1
    assert agent.backoff_s() == 0.5


def test_the_jitter_is_uniform_below_the_delay_and_retry_after_is_a_minimum(tmp_path):
    fake = FakeTime()
    client, hits = scripted_server(fake, [(503, {}), (503, {}), (429, {"Retry-After": "7"})])
    outbox = Outbox(tmp_path / "outbox.db", "r1")
    outbox.put_many(samples(3))
    draws = iter([0.5, 0.25, 0.0])
    agent = Agent(Idle(), outbox, HttpTransport("http://unused", "token", client=client), clock=fake.clock,
                  sleep=fake.sleep, rand=lambda: next(draws))  # fmt: skip
    agent.run(until_drained=True)
    gaps = [later - earlier for earlier, later in itertools.pairwise(hits)]
    assert [pytest.approx(gap, abs=agent.poll_interval_s + 1e-6) for gap in gaps] == [0.25, 0.25, 7.0]
    assert gaps[2] >= 7.0 and outbox.pending() == 0


@pytest.mark.parametrize("token_of", ["nobody", "r2"])
def test_the_service_refusing_the_device_dead_letters_nothing_and_backs_off(tmp_path, service, caplog, token_of):
    fake = FakeTime()
    outbox = Outbox(tmp_path / "outbox.db", "r1")
    outbox.put_many(samples(5))
    token = service.tokens.get(token_of, "not-a-token")  # no token: 401; the token of unit r2: 403
    agent = Agent(Idle(), outbox, HttpTransport("http://unused", token, client=service.client), clock=fake.clock,
                  sleep=fake.sleep, rand=lambda: 1.0)  # fmt: skip
    with caplog.at_level(logging.ERROR, logger="algaflow.agent"):
        assert agent.step() == 0
        assert agent.step() == 0  # backing off: not even tried
    status = 401 if token_of == "nobody" else 403
    assert [r.getMessage() for r in caplog.records if f"refuses this device ({status})" in r.getMessage()]
    assert agent.failures == 1 and agent.retry_at == 0.5
    assert outbox.state() == (5, 5, 0, 5) and outbox.dead_count() == 0
    assert [seq for seq, _ in outbox.due(limit=10, resend_after_s=30)] == [0, 1, 2, 3, 4]  # due after the backoff
    fake.sleep(0.5)
    assert agent.step() == 0 and agent.failures == 2 and agent.retry_at == 1.5
    assert service.store.frame_log("r1").empty
