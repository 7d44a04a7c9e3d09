"""The embedded MQTT broker: amqtt (MQTT 3.1.1) in a thread of the service process, the no-install default of
``algaflow serve`` and ``algaflow demo``, with the same credentials and per-unit ACLs as the Mosquitto
configuration that ``algaflow mqtt-config`` writes (:mod:`algaflow.service.mosquitto`).

Who may connect (checked at CONNECT, before amqtt looks at the client id's session):

    a device   user name = its unit id, password = a device token of that unit (checked against the store
               through :func:`algaflow.service.auth.authenticate`, so a revoked token no longer connects)
    the service  user name ``algaflow-service``, password a secret made for this process and held only in
               memory (the bridge is given it; it is written nowhere)

Anyone else (anonymous, a wrong or revoked token, another unit's token) is refused with CONNACK "not
authorized", as is a client whose will would go to a topic it may not publish on, and a client id whose session
(connected, or kept for a persistent client) belongs to someone else is refused with "identifier rejected"
(a device cannot take over the service's session, nor another unit's).

What each may do with a topic (``publish``; ``subscribe`` to a filter; ``receive`` a message on a topic):

    a device of unit U  publish ``algaflow/U/telemetry`` and ``algaflow/U/status``; subscribe to and receive
                        ``algaflow/U/commands`` only
    the service         publish ``algaflow/<unit>/commands``; subscribe to and receive
                        ``algaflow/+/telemetry`` (also ``status`` and ``events``)

A refused publish is dropped by the broker (acknowledged to its sender, delivered to nobody, never stored), a
refused subscription gets the SUBACK failure code and no messages, and every delivery is checked against the
receiver too, retained messages included, so ``#`` yields nothing of another unit.

amqtt API used (0.12): an authentication plugin (``BaseAuthPlugin.authenticate(session=)``) and a topic plugin
(``BaseTopicPlugin.topic_filtering(session=, topic=, action=)``, called with ``Action.SUBSCRIBE`` on SUBSCRIBE,
``Action.PUBLISH`` on PUBLISH and ``Action.RECEIVE`` per receiver of a broadcast), configured in the broker's
``plugins`` section by dotted path with their ``Config`` dataclass; the identity is kept in
``session.attributes``. Two gaps of amqtt 0.12 are closed by a subclass of its ``Broker``: it deletes or takes
over the session of the CONNECT's client id before it authenticates (an anonymous client could drop the
bridge's subscription), and it sends retained messages to a new subscription without the receive check.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

try:
    from amqtt.broker import Broker
    from amqtt.contexts import Action
    from amqtt.errors import AMQTTError, MQTTError, NoDataError
    from amqtt.mqtt.connack import IDENTIFIER_REJECTED, NOT_AUTHORIZED, ConnackPacket
    from amqtt.mqtt.protocol.broker_handler import BrokerProtocolHandler
    from amqtt.plugins.base import BaseAuthPlugin, BaseTopicPlugin
    from amqtt.session import Session
    from amqtt.utils import gen_client_id
except ImportError as error:  # pragma: no cover - the service extra installs it
    raise ImportError("the embedded MQTT broker needs amqtt: pip install 'algaflow[service]'") from error

from algaflow.catalog.frames import UNIT_ID_PATTERN
from algaflow.service.auth import authenticate
from algaflow.service.mosquitto import SERVICE_USER
from algaflow.store import Store

log = logging.getLogger("algaflow.broker")
IDENTITY = "algaflow.identity"  # the session attribute holding the client's BrokerIdentity
DEVICE_PUBLISHES = ("telemetry", "status")
SERVICE_READS = ("telemetry", "status", "events")


@dataclass(frozen=True, slots=True)
class BrokerIdentity:
    """Who a broker client is: a unit's device, or the service (``unit_id`` None)."""

    unit_id: str | None = None

    @property
    def is_service(self) -> bool:
        return self.unit_id is None


SERVICE = BrokerIdentity()
Check = Callable[[str | None, str | None], BrokerIdentity | None]


def may(identity: BrokerIdentity, action: str, topic: str) -> bool:
    """Whether ``identity`` may ``action`` ("publish", "subscribe", "receive") ``topic`` (a topic name, or a
    filter for "subscribe"): the module doc's table."""
    levels = topic.split("/")
    if len(levels) != 3 or levels[0] != "algaflow":
        return False
    unit, kind = levels[1], levels[2]
    if identity.is_service:
        if action == "publish":
            return kind == "commands" and unit not in ("+", "#")
        return kind in SERVICE_READS and unit != "#"
    if unit != identity.unit_id:
        return False
    return kind in DEVICE_PUBLISHES if action == "publish" else kind == "commands"


def store_check(store: Store, service_password: str) -> Check:
    """The broker's credential check: the service's user name with ``service_password``, or a unit id with a
    device token of that unit in ``store``."""

    def check(username: str | None, password: str | None) -> BrokerIdentity | None:
        if not username or not password:
            return None
        if username == SERVICE_USER and hmac.compare_digest(password.encode(), service_password.encode()):
            return SERVICE
        principal = authenticate(store, password)
        if principal is None or principal.kind != "device" or principal.unit_id != username:
            return None
        if not re.fullmatch(UNIT_ID_PATTERN, username):  # (a topic level without wildcards or slashes)
            return None
        return BrokerIdentity(unit_id=username)

    return check


def _identity(session: Session | None) -> BrokerIdentity | None:
    return session.attributes.get(IDENTITY) if session is not None else None


class AuthPlugin(BaseAuthPlugin):
    """Identifies a CONNECT through ``Config.check`` (module doc); refuses the unknown and a will it may not send."""

    @dataclass
    class Config:
        check: Any = None  # Check

    async def authenticate(self, *, session: Session) -> bool:
        session.attributes.pop(IDENTITY, None)
        try:  # (the store may be a database: not on the broker's event loop)
            identity = await asyncio.to_thread(self.config.check, session.username, session.password)
        except Exception:
            log.exception("MQTT client %r: checking its credentials failed; refused", session.client_id)
            return False
        if identity is None:
            log.warning("MQTT client %r (user %r) from %s refused: not a valid device token or service credential",
                        session.client_id, session.username, session.remote_address)  # fmt: skip
            return False
        if session.will_flag and not may(identity, "publish", session.will_topic or ""):
            log.warning("MQTT client %r (user %r) refused: its will goes to %r", session.client_id, session.username,
                        session.will_topic)  # fmt: skip
            return False
        session.attributes[IDENTITY] = identity
        return True


class TopicPlugin(BaseTopicPlugin):
    """The per-unit ACL (:func:`may`) for each publish, subscription and delivery."""

    @dataclass
    class Config:
        pass

    async def topic_filtering(self, *, session: Session | None = None, topic: str | None = None,
                              action: Action | None = None) -> bool:  # fmt: skip
        identity = _identity(session)
        allowed = identity is not None and topic is not None and action is not None and may(identity, action, topic)
        if not allowed and action is not Action.RECEIVE:
            log.warning("MQTT client %r (user %r) may not %s %r: refused", session and session.client_id,
                        session and session.username, action and action.value, topic)  # fmt: skip
        return allowed


class _Broker(Broker):
    """amqtt's broker with the two gaps of the module doc closed (amqtt 0.12's own code, reordered)."""

    OVERRIDES = ("_initialize_client_session", "_publish_retained_messages_for_subscription")

    async def _initialize_client_session(self, reader: Any, writer: Any, remote_address: str,
                                         remote_port: int) -> tuple[BrokerProtocolHandler, Session]:  # fmt: skip
        try:
            handler, session = await BrokerProtocolHandler.init_from_connect(reader, writer, self.plugins_manager)
        except MQTTError:
            await writer.close()
            raise
        except NoDataError as error:
            raise AMQTTError(error) from error
        # authenticated first: a refused client touches no session
        refusal = None
        if not await self._authenticate(session, self.listeners_config["default"]):
            refusal = NOT_AUTHORIZED
        elif session.client_id in self._sessions:
            owner = _identity(self._sessions[session.client_id][0])
            if owner is not None and owner != _identity(session):
                log.warning("MQTT client id %r (user %r) refused: its session belongs to another client",
                            session.client_id, session.username)  # fmt: skip
                refusal = IDENTIFIER_REJECTED
        if refusal is not None:
            await ConnackPacket.build(0, refusal).to_stream(writer)
            await writer.close()
            raise AMQTTError(f"client {session.client_id!r} from {remote_address}:{remote_port} refused ({refusal})")
        if session.clean_session:
            if session.client_id:
                await self._delete_session(session.client_id)
            else:
                session.client_id = gen_client_id()
            session.parent = 0
        elif session.client_id in self._sessions:  # the kept session, with this connection's will and credentials
            kept = self._sessions[session.client_id][0]
            for name in ("will_flag", "will_message", "will_topic", "will_qos", "will_retain", "keep_alive",
                         "username", "password"):  # fmt: skip
                setattr(kept, name, getattr(session, name))
            kept.attributes[IDENTITY] = session.attributes[IDENTITY]
            session = kept
            session.parent = 1
        else:
            session.parent = 0
        delay = self.config.get("timeout-disconnect-delay", 0)
        if session.keep_alive > 0 and isinstance(delay, int):
            session.keep_alive += delay
        return handler, session

    async def _publish_retained_messages_for_subscription(self, subscription: tuple[str, int],
                                                          session: Session) -> None:  # fmt: skip
        topic_filter, qos = subscription
        handler = self._get_handler(session)
        if handler is None:
            return
        tasks = []
        for topic, retained in list(self._retained_messages.items()):
            if self._matches(topic, topic_filter) and await self._topic_filtering(session, topic, Action.RECEIVE):
                sent = handler.mqtt_publish(retained.topic, retained.data, min(qos, retained.qos or qos), retain=True)
                tasks.append(asyncio.ensure_future(sent))
        if tasks:
            await asyncio.wait(tasks)


class EmbeddedBroker:
    """The broker of the module doc on ``host:port``, in a thread of this process; ``check`` identifies a client
    from its user name and password (:func:`store_check`)."""

    def __init__(self, host: str, port: int, check: Check) -> None:
        self.host, self.port, self.check = host, port, check
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="algaflow-broker", daemon=True)
        self._broker: Any = None

    def start(self, timeout_s: float = 10.0) -> None:
        missing = [name for name in _Broker.OVERRIDES if not hasattr(Broker, name)]
        if missing:  # another amqtt than the one these overrides were written for: refuse rather than run open
            raise RuntimeError(f"this amqtt's Broker has no {', '.join(missing)}; the embedded broker needs amqtt 0.12")
        config = {"listeners": {"default": {"type": "tcp", "bind": f"{self.host}:{self.port}"}},
                  "plugins": {f"{__name__}.AuthPlugin": {"check": self.check},
                              f"{__name__}.TopicPlugin": {}}}  # fmt: skip
        self._thread.start()

        async def start() -> None:
            self._broker = _Broker(config, loop=self._loop)
            await self._broker.start()

        asyncio.run_coroutine_threadsafe(start(), self._loop).result(timeout_s)

    def stop(self) -> None:
        if self._broker is not None:
            asyncio.run_coroutine_threadsafe(self._broker.shutdown(), self._loop).result(10)
            asyncio.run_coroutine_threadsafe(self._loop.shutdown_default_executor(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)


__all__ = ["SERVICE", "SERVICE_USER", "BrokerIdentity", "EmbeddedBroker", "may", "store_check"]
