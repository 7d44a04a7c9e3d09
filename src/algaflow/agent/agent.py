"""The agent's loop: poll the driver into the outbox, send what is due oldest first, act on what the server
answers, act on commands.

- An acknowledgement deletes only frames this agent has sent and not yet had acknowledged; the seqs of one
  that were never sent are refused, logged once per acknowledgement and counted (``refused_acks``).
- A frame the server refuses for good is moved to the outbox's dead-letter table (kept, counted); the frames
  after it flow on.
- Any failure to send (server or broker down, busy, the device's token refused) only delays: the frames stay
  in the outbox and are tried again after a backoff: exponential with full jitter (uniform in [0, delay],
  delay = ``backoff_base_s`` doubling per consecutive failure up to ``backoff_cap_s``; at least the server's
  Retry-After), reset by a successful send or a reconnect to the broker. After a reconnect everything not
  acknowledged is sent again, oldest first.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from algaflow.agent.drivers import Driver
from algaflow.agent.outbox import Outbox
from algaflow.agent.transport import DeviceRefusedError, MqttTransport, Transport, TransportError

log = logging.getLogger("algaflow.agent")


def describe_ranges(ranges: Sequence[Sequence[int]], most: int = 5) -> str:
    """``1..4, 9`` for [[1, 4], [9, 9]]; at most ``most`` ranges, then how many more."""
    shown = [f"{a}" if a == b else f"{a}..{b}" for a, b in ranges[:most]]
    return ", ".join(shown) + (f" and {len(ranges) - most} more ranges" if len(ranges) > most else "")


class Agent:
    """Module doc. ``clock`` (monotonic seconds), ``sleep`` and ``rand`` (uniform in [0, 1)) are injectable."""

    def __init__(self, driver: Driver, outbox: Outbox, transport: Transport, batch_frames: int = 500,
                 resend_after_s: float = 30.0, poll_interval_s: float = 0.05, window: int | None = None, *,
                 backoff_base_s: float = 0.5, backoff_cap_s: float = 60.0,
                 clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep,
                 rand: Callable[[], float] = random.random) -> None:  # fmt: skip
        self.driver, self.outbox, self.transport = driver, outbox, transport
        self.batch_frames, self.resend_after_s, self.poll_interval_s = batch_frames, resend_after_s, poll_interval_s
        # frames in flight: MQTT sends without waiting, so bound what a broker must queue while the service is away
        self.window = window if window is not None else (40 if isinstance(transport, MqttTransport) else None)
        self.backoff_base_s, self.backoff_cap_s = backoff_base_s, backoff_cap_s
        self.clock, self.sleep, self.rand = clock, sleep, rand
        self.transport.on_ack = self._acknowledged
        self.transport.on_refused = self._refused
        self.transport.on_command = self.driver.apply
        self.acknowledged = 0  # frames deleted on an acknowledgement
        self.refused_acks = 0  # acknowledgements that named seqs never sent
        self.dead_lettered = 0  # frames moved to the dead-letter table
        self.failures = 0  # consecutive failed sends
        self.retry_at = 0.0  # clock() before which nothing is sent (the backoff)
        self.stopping = threading.Event()
        self.last_error: str | None = None

    def _acknowledged(self, ranges: list[list[int]]) -> None:
        result = self.outbox.acknowledge(ranges)
        self.acknowledged += result.deleted
        if result.refused:
            self.refused_acks += 1
            log.warning(
                "refused an acknowledgement of seqs %s: never sent by this agent (a forged or confused "
                "acknowledgement); those frames stay in the outbox",
                describe_ranges(result.refused),
            )

    def _refused(self, ranges: list[list[int]], reason: str, detail: str) -> None:
        moved = self.outbox.dead_letter(ranges, reason, detail)
        self.dead_lettered += moved
        log.error("the service refused seqs %s (%s): %s; %d frames moved to the dead letters",
                  describe_ranges(ranges), reason, detail[:500], moved)  # fmt: skip

    def backoff_s(self) -> float:
        """The wait after the current run of ``failures`` (module doc), before any Retry-After."""
        delay = min(self.backoff_cap_s, self.backoff_base_s * 2.0 ** min(max(self.failures - 1, 0), 60))
        return self.rand() * delay

    def _failed(self, error: TransportError) -> None:
        self.failures += 1
        wait = max(self.backoff_s(), error.retry_after_s or 0.0)
        self.retry_at = self.clock() + wait
        waiting = self.outbox.pending()
        if isinstance(error, DeviceRefusedError):  # every time: an operator must act
            log.error("%s; check the device token and that the unit is registered; %d frames wait in the "
                      "outbox, retrying in %.1f s", error, waiting, wait)  # fmt: skip
        elif str(error) != self.last_error:
            log.warning("%s; %d frames wait in the outbox, retrying with backoff (%.1f s)", error, waiting, wait)
        else:
            log.debug("%s; retrying in %.1f s", error, wait)
        self.last_error = str(error)

    def _succeeded(self) -> None:
        self.failures, self.retry_at, self.last_error = 0, 0.0, None

    def step(self) -> int:
        """One round: poll, then send what is due unless backing off; returns the frames sent."""
        samples = self.driver.poll(datetime.now(UTC))
        if samples:
            self.outbox.put_many(samples)
        if isinstance(self.transport, MqttTransport) and self.transport.reconnected.is_set():
            self.transport.reconnected.clear()
            self.outbox.resend_all()
            self._succeeded()
        if self.clock() < self.retry_at:
            return 0
        due = self.outbox.due(self.batch_frames, self.resend_after_s, self.window)
        if not due:
            return 0
        seqs = [seq for seq, _ in due]
        self.outbox.mark_sent(seqs)  # before sending: an acknowledgement may come back before send returns
        try:
            self.transport.send(due)
        except TransportError as error:
            self.outbox.mark_due(seqs)  # still counted as sent: the server may have stored some of them
            self._failed(error)
            return 0
        self._succeeded()
        return len(due)

    def run(self, until_drained: bool = False) -> None:
        """Loop until stopped (or, with ``until_drained``, until the driver is finished and nothing waits in the
        outbox; dead letters do not wait)."""
        while not self.stopping.is_set():
            sent = self.step()
            if until_drained and self.driver.finished and self.outbox.pending() == 0:
                return
            if sent == 0:
                self.sleep(self.poll_interval_s)

    def stop(self) -> None:
        self.stopping.set()
