"""MQTT into the store: the service subscribes to ``algaflow/+/telemetry`` (as the shared subscription
``$share/<group>/algaflow/+/telemetry`` on an external broker, so several service processes split the load)
with QoS 1 and acknowledges a message to the broker only after its frames are committed (manual PUBACK).

A message carries one Frame or a JSON list of Frames of the unit its topic names. Messages are taken in
batches (whatever arrived while the last batch was being written): the valid frames of a batch go to the
store in one transaction, then every message of the batch is acknowledged, and each unit is told which seqs
are stored on ``algaflow/<unit>/commands`` (``{"kind": "ack", "seqs": [[first, last], ...]}``): the agent
deletes a frame from its outbox only then. A rejected message (too large, not JSON, not valid frames, a
frame of another unit than the topic's, an unregistered unit) is acknowledged too (a resend would be
refused again), logged and counted, and the unit is told why (``{"kind": "rejected", ...}``); nothing of it
is stored; the rejection names the refused frames' seqs when the payload lets them be read
(``"seqs": [[first, last], ...]``, omitted otherwise) so that the agent can set them aside, and the frames
after them are not held back waiting for seqs that will never come. A message for a
unit this service does not know is counted and logged only (on a shared broker it may be another deployment's
unit). While the store fails, the batch is retried and nothing is acknowledged.

The embedded broker (:mod:`algaflow.service.broker`: amqtt, MQTT 3.1.1, device tokens and per-unit ACLs) runs
in a thread of the service process; it has no shared subscriptions, so the bridge subscribes to the plain topic
there, with the service credential the broker was given (``credentials``).
"""

from __future__ import annotations

import json
import logging
import queue
import socket
import ssl
import threading
import time
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from pydantic import TypeAdapter, ValidationError

from algaflow.catalog.frames import Frame
from algaflow.service.config import LimitSettings, MqttSettings
from algaflow.service.ingest import Ingestor, seq_ranges
from algaflow.store import UnknownUnitError

log = logging.getLogger("algaflow.mqtt")
TELEMETRY = "algaflow/+/telemetry"
FRAMES = TypeAdapter(Frame | list[Frame])
BATCH_WAIT_S = 0.005
MAX_BATCH_MESSAGES = 2000
RECEIVE_MAXIMUM = 2000  # QoS 1 messages the broker may have in flight to the bridge (MQTT 5)
GAP_TIMEOUT_S = 300.0  # how long a unit's later frames wait for an earlier seq that has not arrived
MAX_REFUSED_RANGES = 100  # refused seq ranges remembered per unit: frames after them are not held back
MAX_SEQ = 2**63 - 1  # an outbox seq is a 64-bit integer


def commands_topic(unit_id: str) -> str:
    return f"algaflow/{unit_id}/commands"


def payload_seqs(payload: bytes) -> list[list[int]]:
    """The seq ranges of the frames in a refused message, read leniently: a JSON object with an integer
    ``seq``, or a list of such objects (anything else in it is skipped); [] when none can be read."""
    try:
        parsed = json.loads(payload)
    except (ValueError, RecursionError):  # not JSON (or not UTF-8), or nested too deep
        return []
    items = parsed if isinstance(parsed, list) else [parsed]
    return seq_ranges([item["seq"] for item in items if isinstance(item, dict) and type(item.get("seq")) is int
                       and 0 <= item["seq"] <= MAX_SEQ])  # fmt: skip


def tls_context(ca_file: str | None, certfile: str | None, keyfile: str | None) -> ssl.SSLContext | None:
    """A client TLS context when a CA or a client certificate is configured."""
    if not (ca_file or certfile):
        return None
    context = ssl.create_default_context(cafile=ca_file)
    if certfile:
        context.load_cert_chain(certfile, keyfile)
    return context


class MqttBridge:
    """Module doc. ``embedded`` selects the plain subscription and MQTT 3.1.1; ``credentials`` (user name,
    password), when given, replace the configured ones (the embedded broker's service credential)."""

    def __init__(self, settings: MqttSettings, limits: LimitSettings, ingestor: Ingestor,
                 embedded: bool = False, credentials: tuple[str, str] | None = None) -> None:  # fmt: skip
        self.settings, self.limits, self.ingestor, self.embedded = settings, limits, ingestor, embedded
        # The broker keeps this client's session (its subscription and the messages queued for it) across
        # restarts, so the id must be stable, and distinct for each service process of the group.
        client_id = settings.client_id or f"algaflow-{settings.shared_group}-{socket.gethostname()}"
        self.topic = TELEMETRY if embedded else f"$share/{settings.shared_group}/{TELEMETRY}"
        self.protocol = mqtt.MQTTv311 if embedded else mqtt.MQTTv5
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=self.protocol,
                                  clean_session=False if self.protocol == mqtt.MQTTv311 else None,
                                  manual_ack=True)  # fmt: skip
        if credentials is not None:
            self.client.username_pw_set(*credentials)
        elif settings.username:
            self.client.username_pw_set(settings.username, settings.password)
        context = tls_context(settings.tls_ca_file, settings.tls_certfile, settings.tls_keyfile)
        if context is not None:
            self.client.tls_set_context(context)
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        self.client.reconnect_delay_set(0.2, 5)
        self._messages: queue.Queue[mqtt.MQTTMessage | None] = queue.Queue()
        self._worker = threading.Thread(target=self._work, name="algaflow-mqtt-bridge", daemon=True)
        self.connected = threading.Event()
        self.known_units: set[str] = set()
        self.next_seq: dict[str, int] = {}  # per unit, the seq that continues its stored frames
        self.refused: dict[str, list[list[int]]] = {}  # per unit, the newest seq ranges it was told were refused
        self.gap_since: dict[str, float] = {}

    # ---- connection ------------------------------------------------------------------------------------------
    def start(self) -> None:
        properties = None
        if self.protocol == mqtt.MQTTv5:
            properties = Properties(PacketTypes.CONNECT)
            properties.SessionExpiryInterval = 3600  # messages wait for a restarted service
            properties.ReceiveMaximum = RECEIVE_MAXIMUM
        clean_start = False if self.protocol == mqtt.MQTTv5 else mqtt.MQTT_CLEAN_START_FIRST_ONLY  # 3.1.1: session
        self.client.connect_async(self.settings.host, self.settings.port, keepalive=30, clean_start=clean_start,
                                  properties=properties)  # fmt: skip
        self._worker.start()
        self.client.loop_start()

    def stop(self) -> None:
        self._messages.put(None)
        self._worker.join(timeout=30)
        self.client.disconnect()
        self.client.loop_stop()

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        if getattr(reason, "is_failure", False):
            log.error("MQTT broker %s:%s refused the bridge: %s", self.settings.host, self.settings.port, reason)
            return
        client.subscribe(self.topic, qos=1)
        self.connected.set()
        log.info("MQTT bridge subscribed to %s on %s:%s", self.topic, self.settings.host, self.settings.port)

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        self._messages.put(message)

    def publish(self, unit_id: str, message: dict) -> None:
        """Send a message to the unit (decisions, acknowledgements) on its commands topic, QoS 1."""
        self.client.publish(commands_topic(unit_id), json.dumps(message, separators=(",", ":")), qos=1)

    # ---- the batching worker -------------------------------------------------------------------------------------
    def _work(self) -> None:
        while True:
            first = self._messages.get()
            if first is None:
                return
            batch = [first]
            deadline = time.monotonic() + BATCH_WAIT_S
            while len(batch) < MAX_BATCH_MESSAGES:
                try:
                    more = self._messages.get(timeout=max(deadline - time.monotonic(), 0.0))
                except queue.Empty:
                    break
                if more is None:
                    self._messages.put(None)
                    break
                batch.append(more)
            self._handle(batch)

    def _reject(self, unit_id: str | None, reason: str, detail: str, tell_unit: bool = True,
                payload: bytes | None = None, seqs: list[list[int]] | None = None) -> None:  # fmt: skip
        """Count and log a refusal and tell the unit, with the refused seqs (``seqs``, or those read from the
        refused message's ``payload``) when there are any."""
        self.ingestor.counters.reject("mqtt", reason, unit_id)
        log.warning("MQTT frame rejected (%s) for %s: %s", reason, unit_id or "?", detail)
        if unit_id is not None and tell_unit:
            message: dict[str, Any] = {"kind": "rejected", "reason": reason, "detail": detail[:500]}
            seqs = seqs if seqs is not None else payload_seqs(payload) if payload is not None else []
            if seqs:
                message["seqs"] = seqs
                self.refused[unit_id] = [*self.refused.get(unit_id, []), *seqs][-MAX_REFUSED_RANGES:]
            self.publish(unit_id, message)

    def _parse(self, message: mqtt.MQTTMessage) -> list[Frame] | None:
        parts = message.topic.split("/")
        unit_id = parts[1] if len(parts) == 3 else None
        if unit_id not in self.known_units:
            self.known_units = set(self.ingestor.store.units())
            if unit_id not in self.known_units:  # not ours (maybe another deployment's): count it, say nothing
                self._reject(unit_id, "unknown_unit", f"unit {unit_id!r} is not registered", tell_unit=False)
                return None
        if len(message.payload) > self.limits.max_message_bytes:  # (its seqs read unless it is far too large)
            readable = len(message.payload) <= 4 * self.limits.max_message_bytes
            self._reject(unit_id, "too_large", f"{len(message.payload)} bytes; the limit is "
                         f"{self.limits.max_message_bytes}", payload=message.payload if readable else None)  # fmt: skip
            return None
        try:
            parsed = FRAMES.validate_json(message.payload)
        except ValidationError as error:
            problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors()[:5])
            self._reject(unit_id, "invalid", problems, payload=message.payload)
            return None
        frames = parsed if isinstance(parsed, list) else [parsed]
        if not frames:
            self._reject(unit_id, "invalid", "an empty list of frames")
            return None
        strangers = sorted({f.unit_id for f in frames if f.unit_id != unit_id})
        if strangers:
            self._reject(unit_id, "wrong_unit", f"frames of unit(s) {', '.join(strangers)} on topic {message.topic}",
                         seqs=seq_ranges([f.seq for f in frames]))  # fmt: skip
            return None
        return frames

    def _in_order(self, frames: list[Frame]) -> list[Frame]:
        """The frames that continue their unit's stored frames, or repeat them (module doc: order)."""
        kept = []
        for frame in frames:
            unit = frame.unit_id
            if unit not in self.next_seq:
                stored = self.ingestor.store.frame_log(unit)
                self.next_seq[unit] = int(stored.seq.max()) + 1 if len(stored) else frame.seq
            expected = self.next_seq[unit]
            for first, last in self.refused.get(unit, ()):  # refused seqs never come: the agent set them aside
                if first <= expected <= last:
                    expected = self.next_seq[unit] = last + 1
            if frame.seq > expected:
                since = self.gap_since.setdefault(unit, time.monotonic())
                if time.monotonic() - since < GAP_TIMEOUT_S:
                    with self.ingestor.counters.lock:
                        self.ingestor.counters.by_reason["waiting_for_earlier_seq"] = (
                            self.ingestor.counters.by_reason.get("waiting_for_earlier_seq", 0) + 1)  # fmt: skip
                    continue
                log.warning("unit %s: seqs %d..%d never arrived; accepting the gap", unit, expected, frame.seq - 1)
            if frame.seq >= expected:
                self.next_seq[unit] = frame.seq + 1
                self.gap_since.pop(unit, None)
            kept.append(frame)
        return kept

    def _handle(self, messages: list[mqtt.MQTTMessage]) -> None:
        frames: list[Frame] = []
        for message in messages:
            parsed = self._parse(message)
            if parsed:
                frames.extend(parsed)
        frames = self._in_order(frames)
        acknowledged: dict[str, list[list[int]]] = {}
        if frames:
            delay = 0.1
            while True:
                try:
                    _, acknowledged = self.ingestor.ingest(None, frames)
                    break
                except UnknownUnitError as error:  # a unit was removed meanwhile: refuse its frames, keep the rest
                    self.known_units = set(self.ingestor.store.units())
                    gone = {f.unit_id for f in frames} - self.known_units
                    for unit in gone:
                        self._reject(unit, "unknown_unit", str(error),
                                     seqs=seq_ranges([f.seq for f in frames if f.unit_id == unit]))  # fmt: skip
                    frames = [f for f in frames if f.unit_id in self.known_units]
                    if not frames:
                        break
                except Exception:  # the store is down: keep the batch, acknowledge nothing, retry
                    log.exception("store write failed; retrying in %.1f s", delay)
                    time.sleep(delay)
                    delay = min(delay * 2, 5.0)
        for message in messages:
            self.client.ack(message.mid, message.qos)
        counters = self.ingestor.counters
        with counters.lock:
            counters.mqtt_messages += len(messages)
            for message in messages:
                parts = message.topic.split("/")
                unit = parts[1] if len(parts) == 3 else ""
                counters.mqtt_by_unit[unit] = counters.mqtt_by_unit.get(unit, 0) + 1
        for unit, ranges in acknowledged.items():
            self.publish(unit, {"kind": "ack", "seqs": ranges})
