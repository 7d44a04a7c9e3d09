"""The agent's loop: poll the driver into the outbox, send what is due oldest first, delete what the server
acknowledged, act on commands. Any failure to send (server or broker down) only delays: the frames stay
in the outbox, and after a reconnect everything not acknowledged is sent again, oldest first."""

from __future__ import annotations

import logging
import threading
import time
from datetime import UTC, datetime

from algaflow.agent.drivers import Driver
from algaflow.agent.outbox import Outbox
from algaflow.agent.transport import MqttTransport, Transport, TransportError

log = logging.getLogger("algaflow.agent")


class Agent:
    def __init__(self, driver: Driver, outbox: Outbox, transport: Transport, batch_frames: int = 500,
                 resend_after_s: float = 30.0, poll_interval_s: float = 0.05,
                 window: int | None = None) -> None:  # fmt: skip
        self.driver, self.outbox, self.transport = driver, outbox, transport
        self.batch_frames, self.resend_after_s, self.poll_interval_s = batch_frames, resend_after_s, poll_interval_s
        # frames in flight: MQTT sends without waiting, so bound what a broker must queue while the service is away
        self.window = window if window is not None else (40 if isinstance(transport, MqttTransport) else None)
        self.transport.on_ack = self._acknowledged
        self.transport.on_command = self.driver.apply
        self.acknowledged = 0
        self.stopping = threading.Event()
        self.last_error: str | None = None

    def _acknowledged(self, ranges: list[list[int]]) -> None:
        self.acknowledged += self.outbox.acknowledge(ranges)

    def step(self) -> int:
        """One round: poll, send; returns the frames sent."""
        samples = self.driver.poll(datetime.now(UTC))
        if samples:
            self.outbox.put_many(samples)
        if isinstance(self.transport, MqttTransport) and self.transport.reconnected.is_set():
            self.transport.reconnected.clear()
            self.outbox.resend_all()
        due = self.outbox.due(self.batch_frames, self.resend_after_s, self.window)
        if not due:
            return 0
        try:
            self.transport.send(due)
        except TransportError as error:
            if str(error) != self.last_error:
                log.warning("%s; %d frames wait in the outbox", error, self.outbox.pending())
                self.last_error = str(error)
            return 0
        self.last_error = None
        self.outbox.mark_sent([seq for seq, _ in due])
        return len(due)

    def run(self, until_drained: bool = False) -> None:
        """Loop until stopped (or, with ``until_drained``, until the driver is finished and all is acknowledged)."""
        while not self.stopping.is_set():
            sent = self.step()
            if until_drained and self.driver.finished and self.outbox.pending() == 0:
                return
            if sent == 0:
                time.sleep(self.poll_interval_s)

    def stop(self) -> None:
        self.stopping.set()
