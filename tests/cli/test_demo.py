"""The live demo: its agents fill the store through the real broker and pipeline, and a second run resumes
where the first stopped, without sending again what is stored."""

import time

from algaflow.cli.demo import LiveDemo
from algaflow.store import open_store
from tests.service.conftest import free_port


def wait_for(condition, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.2)
    return False


def test_the_demo_streams_estimates_and_resumes_from_the_store(tmp_path):
    demo = LiveDemo(tmp_path / "data", port=free_port(), days=1.0, speed=600.0, units=2, refresh_s=1.0)
    demo.start()  # a frame a simulated minute, ten a second: the day would take 144 s
    try:
        store = demo.service.store
        assert wait_for(lambda: all(len(store.estimates(u.unit_id)) > 5 for u in demo.fleet), 240)
        first_frames = {u.unit_id: len(store.frame_log(u.unit_id)) for u in demo.fleet}
    finally:
        demo.stop()
    tokens = dict(demo.tokens)
    again = LiveDemo(tmp_path / "data", port=free_port(), speed=600.0, units=2)
    assert again.tokens == tokens and again.start_time == demo.start_time  # the same fleet, the same clock
    again.start()
    try:
        store = again.service.store
        assert wait_for(lambda: all(len(store.frame_log(u)) > n + 20 for u, n in first_frames.items()), 240)
    finally:
        again.stop()
    with open_store(tmp_path / "data" / "algaflow.db") as store:
        for unit_id in first_frames:
            log = store.frame_log(unit_id)
            assert log.seq.is_unique and log.time_us.is_unique  # resumed: nothing was sent twice
            assert log.time_us.is_monotonic_increasing  # and it went on from where it stopped
