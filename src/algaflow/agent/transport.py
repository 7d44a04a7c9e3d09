"""How frames leave the device: one small interface, two transports.

``send(frames)`` hands over (seq, JSON) pairs oldest first. What the server makes of them comes back through
callbacks: ``on_ack(ranges)`` for the seq ranges [first, last] it has stored, ``on_refused(ranges, reason,
detail)`` for frames it refuses for good (the agent dead-letters them), and ``on_command(message)`` for its
commands. Over HTTP the answer is the response to the request; over MQTT the frames are published with QoS 1
on ``algaflow/<unit>/telemetry`` and the service's acks, rejections and decisions arrive on
``algaflow/<unit>/commands``. The transport only reports: the agent decides what the outbox does (it deletes
only frames it has sent) and when to try again.

``send`` raises :class:`TransportError` when it cannot send now (network, broker, a busy or failing server:
the agent retries with backoff) and :class:`DeviceRefusedError` when the service refuses the device itself
(a bad token, an unregistered unit: no frame is at fault, nothing is dead-lettered, the agent retries with
backoff until an operator fixes it).
"""

from __future__ import annotations

import json
import logging
import ssl
import threading
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import httpx

log = logging.getLogger("algaflow.agent")
Ranges = list[list[int]]
Ack = Callable[[Ranges], None]
Refused = Callable[[Ranges, str, str], None]
Command = Callable[[dict], None]
REFUSES_FRAMES = (400, 413, 422)  # HTTP: something in the batch is refused; a single frame: refused for good
REFUSES_DEVICE = (401, 403, 404)  # HTTP: the token or the unit is refused, whatever the frames
DEVICE_REASONS = ("unknown_unit",)  # MQTT rejections of the unit, not of its frames: nothing is dead-lettered


class TransportError(ConnectionError):
    """Could not send now; the frames stay in the outbox and the agent tries again later. ``retry_after_s``:
    the least wait the server asked for (HTTP 429 Retry-After), else None."""

    def __init__(self, message: str, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class DeviceRefusedError(TransportError):
    """The service refuses this device (HTTP 401, 403, 404): a bad or revoked token, a token of another unit, an
    unregistered unit. No frame is at fault: nothing is dead-lettered, the agent retries with backoff."""


def parse_ranges(value: Any) -> Ranges | None:
    """``value`` as a list of [first, last] integer ranges with first <= last, or None when it is not one."""
    if not isinstance(value, list):
        return None
    ranges = []
    for item in value:
        if (
            not isinstance(item, list | tuple)
            or len(item) != 2
            or not all(isinstance(n, int) and not isinstance(n, bool) for n in item)
            or item[0] > item[1]
        ):
            return None
        ranges.append([item[0], item[1]])
    return ranges


class Transport:
    on_ack: Ack = staticmethod(lambda ranges: None)
    on_refused: Refused = staticmethod(lambda ranges, reason, detail: None)
    on_command: Command = staticmethod(lambda message: None)

    @property
    def connected(self) -> bool:
        return True

    def send(self, frames: Sequence[tuple[int, str]]) -> None:
        raise NotImplementedError

    def close(self) -> None:
        return None


def _retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (a number of seconds or an HTTP date), None when absent or unreadable."""
    if not value:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        return max((parsedate_to_datetime(value) - datetime.now(UTC)).total_seconds(), 0.0)
    except (TypeError, ValueError):
        return None


def _detail(response: Any) -> str:
    """The service's ``detail`` (a JSON error body), else the body's start."""
    try:
        detail = response.json().get("detail")
    except (ValueError, AttributeError):
        detail = None
    return detail if isinstance(detail, str) else response.text[:1000]


class HttpTransport(Transport):
    """POST ``{"frames": [...]}`` to ``<url>/api/v1/frames`` with the device token; 200 acknowledges the frames.

    A refusal of frames (400, 413, 422) of a batch of several frames splits it in halves, each sent on its
    own (oldest first), so that only the refused frames are reported to ``on_refused`` (reason ``"HTTP
    <status>"``) and every valid one is stored; 401, 403 and 404 raise :class:`DeviceRefusedError`; 429
    (with its Retry-After), 5xx, other answers and network errors raise :class:`TransportError`. ``client``:
    an ``httpx.Client`` to use instead of one built from ``url`` (its base URL is then the client's)."""

    def __init__(self, url: str, token: str, timeout_s: float = 30.0, verify: bool | str = True,
                 client: httpx.Client | None = None) -> None:  # fmt: skip
        import httpx

        self._httpx = httpx
        self._owned = client is None
        self._client = client if client is not None else httpx.Client(base_url=url.rstrip("/"), timeout=timeout_s,
                                                                      verify=verify)  # fmt: skip
        self._headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        self.posts = 0  # requests made

    def send(self, frames: Sequence[tuple[int, str]]) -> None:
        if frames:
            self._post(list(frames))

    def _post(self, frames: list[tuple[int, str]]) -> None:
        body = '{"frames":[' + ",".join(payload for _, payload in frames) + "]}"
        self.posts += 1
        try:
            response = self._client.post("/api/v1/frames", content=body.encode(), headers=self._headers)
        except self._httpx.HTTPError as error:
            raise TransportError(f"server unreachable: {error}") from error
        status = response.status_code
        if status == 200:
            try:
                acknowledged = response.json()["acknowledged"]
                groups = list(acknowledged.values())
            except (ValueError, KeyError, TypeError, AttributeError) as error:
                raise TransportError(f"unreadable answer from the server: {response.text[:200]}") from error
            for ranges in groups:
                checked = parse_ranges(ranges)
                if checked is None:
                    raise TransportError(f"unreadable acknowledgement from the server: {ranges!r:.200}")
                self.on_ack(checked)
            return
        if status in REFUSES_FRAMES:
            if len(frames) > 1:
                half = len(frames) // 2
                self._post(frames[:half])
                self._post(frames[half:])
            else:
                self.on_refused([[frames[0][0], frames[0][0]]], f"HTTP {status}", _detail(response))
            return
        if status in REFUSES_DEVICE:
            raise DeviceRefusedError(f"the service refuses this device ({status}): {_detail(response)[:300]}")
        if status == 429:
            raise TransportError(f"server busy (429): {_detail(response)[:200]}",
                                 _retry_after(response.headers.get("Retry-After")))  # fmt: skip
        raise TransportError(f"server busy or down ({status}): {response.text[:200]}")

    def close(self) -> None:
        if self._owned:
            self._client.close()


class MqttTransport(Transport):
    """QoS 1 on the unit's telemetry topic; acks, rejections and commands from its commands topic (module doc).
    ``{"kind": "ack", "seqs": [[first, last], ...]}`` goes to ``on_ack``; ``{"kind": "rejected", "reason": ...,
    "detail": ..., "seqs": [...]}`` to ``on_refused`` (without seqs, or with a reason of DEVICE_REASONS, it is
    only logged); anything else to ``on_command``. Username: the unit id, password: its device token (the
    generated Mosquitto configuration)."""

    def __init__(self, unit_id: str, host: str, port: int, token: str | None = None,
                 tls: ssl.SSLContext | None = None, client_id: str | None = None) -> None:  # fmt: skip
        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion

        self.unit_id = unit_id
        self._mqtt = mqtt
        self._client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id or f"algaflow-agent-{unit_id}",
                                   clean_session=True)  # fmt: skip
        if token:
            self._client.username_pw_set(unit_id, token)
        if tls is not None:
            self._client.tls_set_context(tls)
        self._client.max_inflight_messages_set(1000)
        self._client.max_queued_messages_set(0)
        self._client.will_set(f"algaflow/{unit_id}/status", json.dumps({"online": False}), qos=1, retain=True)
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_message = self._on_message
        self._client.reconnect_delay_set(0.2, 5)
        self._connected = threading.Event()
        self.reconnected = threading.Event()
        self._client.connect_async(host, port, keepalive=15)
        self._client.loop_start()

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        if getattr(reason, "is_failure", False):
            log.error("broker refused unit %s: %s", self.unit_id, reason)
            return
        client.subscribe(f"algaflow/{self.unit_id}/commands", qos=1)
        client.publish(f"algaflow/{self.unit_id}/status", json.dumps({"online": True}), qos=1, retain=True)
        self._connected.set()
        self.reconnected.set()

    def _on_disconnect(self, client: Any, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        self._connected.clear()

    def _on_message(self, client: Any, userdata: Any, message: Any) -> None:
        try:
            payload = json.loads(message.payload)
        except ValueError:
            log.warning("unreadable command on %s", message.topic)
            return
        kind = payload.get("kind") if isinstance(payload, dict) else None
        if kind == "ack":
            ranges = parse_ranges(payload.get("seqs"))
            if ranges is None:
                log.warning("unreadable acknowledgement on %s: %.200s", message.topic, payload.get("seqs"))
            else:
                self.on_ack(ranges)
        elif kind == "rejected":
            reason, detail = str(payload.get("reason") or "rejected"), str(payload.get("detail") or "")
            ranges = parse_ranges(payload.get("seqs")) if "seqs" in payload else None
            if reason in DEVICE_REASONS:  # as HTTP 404: the frames are not at fault; resent until an operator acts
                log.error("the service refuses unit %s (%s): %s; register the unit", self.unit_id, reason, detail)
            elif ranges is None:  # no (readable) seqs: nothing to dead-letter
                log.error("the service rejected frames of %s (%s): %s", self.unit_id, reason, detail)
            else:
                self.on_refused(ranges, reason, detail)
        else:
            self.on_command(payload)

    def send(self, frames: Sequence[tuple[int, str]]) -> None:
        if not self.connected:
            raise TransportError("not connected to the broker")
        for _, payload in frames:
            info = self._client.publish(f"algaflow/{self.unit_id}/telemetry", payload, qos=1)
            if info.rc != self._mqtt.MQTT_ERR_SUCCESS:
                raise TransportError(f"publish failed: {self._mqtt.error_string(info.rc)}")

    def close(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()
