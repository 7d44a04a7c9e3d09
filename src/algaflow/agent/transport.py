"""How frames leave the device: one small interface, two transports.

``send(frames)`` hands over (seq, JSON) pairs oldest first. Acknowledgements come back through
``on_ack(ranges)`` (the seq ranges the server has stored) and commands through ``on_command(message)``:
over HTTP the ack is the response to the request; over MQTT the frames are published with QoS 1 on
``algaflow/<unit>/telemetry`` and the service's acks and decisions arrive on ``algaflow/<unit>/commands``.
A transport raises :class:`TransportError` when it cannot send now (the agent retries later).
"""

from __future__ import annotations

import json
import logging
import ssl
import threading
from collections.abc import Callable, Sequence
from typing import Any

log = logging.getLogger("algaflow.agent")
Ack = Callable[[list[list[int]]], None]
Command = Callable[[dict], None]


class TransportError(ConnectionError):
    """Could not send now."""


class Transport:
    on_ack: Ack = staticmethod(lambda ranges: None)
    on_command: Command = staticmethod(lambda message: None)

    @property
    def connected(self) -> bool:
        return True

    def send(self, frames: Sequence[tuple[int, str]]) -> None:
        raise NotImplementedError

    def close(self) -> None:
        return None


class HttpTransport(Transport):
    """POST ``{"frames": [...]}`` to ``<url>/api/v1/frames`` with the device token; 200 acknowledges all."""

    def __init__(self, url: str, token: str, timeout_s: float = 30.0, verify: bool | str = True) -> None:
        import httpx

        self._client = httpx.Client(base_url=url.rstrip("/"), timeout=timeout_s, verify=verify,
                                    headers={"Authorization": f"Bearer {token}",
                                             "Content-Type": "application/json"})  # fmt: skip
        self._httpx = httpx

    def send(self, frames: Sequence[tuple[int, str]]) -> None:
        body = '{"frames":[' + ",".join(payload for _, payload in frames) + "]}"
        try:
            response = self._client.post("/api/v1/frames", content=body.encode())
        except self._httpx.HTTPError as error:
            raise TransportError(f"server unreachable: {error}") from error
        if response.status_code == 200:
            for ranges in response.json()["acknowledged"].values():
                self.on_ack(ranges)
            return
        if response.status_code in (429, 500, 502, 503, 504):
            raise TransportError(f"server busy or down ({response.status_code}): {response.text[:200]}")
        # 4xx: the server refuses these frames for good; keep them (nothing is lost) and say why
        raise TransportError(f"server refused the frames ({response.status_code}): {response.text[:500]}")

    def close(self) -> None:
        self._client.close()


class MqttTransport(Transport):
    """QoS 1 on the unit's telemetry topic; acks and commands from its commands topic (module doc).
    Username: the unit id, password: its device token (the generated Mosquitto configuration)."""

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
        if isinstance(payload, dict) and payload.get("kind") == "ack":
            self.on_ack(payload.get("seqs", []))
        elif isinstance(payload, dict) and payload.get("kind") == "rejected":
            log.error("the service rejected frames of %s: %s", self.unit_id, payload.get("detail"))
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
