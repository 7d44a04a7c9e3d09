"""``algaflow serve``: the store, the live pipeline, the HTTP API, and MQTT (the embedded broker or an external
one), wired from the settings and started in order; stopped in reverse, the pipeline checkpointed last. After a
restart the pipeline's replay of what the store received since its checkpoint runs on its worker, so HTTP
and MQTT answer at once and new frames wait in the pipeline's queue behind the replay.
The fusion kernels are compiled from a background thread as the service starts
(:func:`algaflow.fusion.warm_up.warm_up_kernels`; ``kernels_ready`` is set when they are)."""

from __future__ import annotations

import logging
import secrets
import threading

from fastapi import FastAPI

from algaflow.fusion.warm_up import warm_up_kernels
from algaflow.service.app import create_app
from algaflow.service.compaction import PeriodicCompaction
from algaflow.service.config import Settings, calibrations_path, lake_path
from algaflow.service.ingest import Ingestor
from algaflow.service.mqtt_bridge import MqttBridge
from algaflow.service.pipeline import LivePipeline
from algaflow.store import Store, open_store

log = logging.getLogger("algaflow.service")


class Service:
    """Everything ``algaflow serve`` runs (module doc)."""

    def __init__(self, settings: Settings, store: Store | None = None) -> None:
        self.settings = settings
        self.store = store or open_store(settings.store.url)
        self.pipeline = (LivePipeline(self.store, settings.pipeline, calibrations=calibrations_path(settings))
                         if settings.pipeline.enabled else None)
        self.ingestor = Ingestor(self.store, self.pipeline)
        self.app: FastAPI = create_app(settings, self.ingestor)
        self.broker, credentials = None, None
        if settings.mqtt.mode == "embedded":  # devices sign in with their tokens, the bridge with this process's secret
            from algaflow.service.broker import SERVICE_USER, EmbeddedBroker, store_check

            service_password = secrets.token_urlsafe(32)  # held in memory only, by the broker and the bridge
            self.broker = EmbeddedBroker(settings.mqtt.host, settings.mqtt.port,
                                         store_check(self.store, service_password))  # fmt: skip
            credentials = (SERVICE_USER, service_password)
        self.bridge = (None if settings.mqtt.mode == "off" else
                       MqttBridge(settings.mqtt, settings.limits, self.ingestor, embedded=self.broker is not None,
                                  credentials=credentials))  # fmt: skip
        if self.pipeline is not None and self.bridge is not None:
            self.pipeline.publish = self.bridge.publish
        lake, every_s = lake_path(settings), settings.lake.compact_every_s
        self.compaction = PeriodicCompaction(self.store, lake, every_s) if lake is not None and every_s else None
        self.kernels_ready = threading.Event()

    def _warm_up(self) -> None:
        try:
            log.info("fusion kernels ready (%.1f s)", warm_up_kernels())
        except Exception:  # a failed warm-up only means the first real call compiles
            log.exception("warming up the fusion kernels failed")
        finally:
            self.kernels_ready.set()

    def start(self) -> None:
        threading.Thread(target=self._warm_up, name="algaflow-warm-up", daemon=True).start()
        if self.pipeline is not None:  # the replay runs behind HTTP and MQTT, which answer at once
            self.pipeline.start()
            self.pipeline.restore_in_background()
        if self.broker is not None:
            self.broker.start()
            log.info("embedded MQTT broker on %s:%s", self.settings.mqtt.host, self.settings.mqtt.port)
        if self.bridge is not None:
            self.bridge.start()
        if self.compaction is not None:
            self.compaction.start()
            log.info("lake compaction into %s every %.0f s", self.compaction.path, self.compaction.every_s)
        elif self.settings.lake.compact_every_s:
            log.info("no lake compaction: set [lake] path for the store %s", self.settings.store.url)

    def stop(self) -> None:
        if self.compaction is not None:
            self.compaction.stop()
        if self.bridge is not None:
            self.bridge.stop()
        if self.broker is not None:
            self.broker.stop()
        if self.pipeline is not None:
            self.pipeline.stop()
        self.store.close()

    def run(self) -> None:
        """Start, serve HTTP until interrupted, stop."""
        import uvicorn

        http = self.settings.http
        self.start()
        try:
            uvicorn.run(self.app, host=http.host, port=http.port, log_level="warning", access_log=False,
                        ssl_certfile=http.tls_certfile, ssl_keyfile=http.tls_keyfile)  # fmt: skip
        finally:
            self.stop()
