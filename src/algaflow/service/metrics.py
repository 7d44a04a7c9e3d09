"""``GET /metrics``: the service's counters in Prometheus' text format (prometheus_client writes it), read at
each scrape: frames, readings and refusals by channel and reason, the live pipeline's backlog and whether it
is replaying, quarantined records, and uptime. Unit ids are not labels (a fleet would make thousands of
series); per-unit numbers are in the API."""

from __future__ import annotations

import time
from collections.abc import Iterator

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from algaflow.service.ingest import Ingestor

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class IngestCollector(Collector):
    """The ingestor's and its pipeline's numbers as metric families (module doc)."""

    def __init__(self, ingestor: Ingestor) -> None:
        self.ingestor = ingestor

    def collect(self) -> Iterator[Metric]:
        counters, pipeline = self.ingestor.counters, self.ingestor.pipeline
        with counters.lock:
            frames, readings, mqtt = counters.frames, counters.readings, counters.mqtt_messages
            refused = {"http": counters.rejected_http, "mqtt": counters.rejected_mqtt}
            reasons = dict(counters.by_reason)
        yield CounterMetricFamily("algaflow_frames_stored", "frames stored (acknowledged)", value=frames)
        yield CounterMetricFamily("algaflow_readings_stored", "readings in the frames stored", value=readings)
        yield CounterMetricFamily("algaflow_mqtt_messages", "MQTT messages answered (stored or refused)", value=mqtt)
        by_channel = CounterMetricFamily("algaflow_frames_refused", "requests or messages refused", labels=["channel"])
        for channel, count in refused.items():
            by_channel.add_metric([channel], count)
        yield by_channel
        by_reason = CounterMetricFamily("algaflow_refusals", "refusals and waits by reason", labels=["reason"])
        for reason, count in sorted(reasons.items()):
            by_reason.add_metric([reason], count)
        yield by_reason
        backlog = pipeline.backlog if pipeline is not None else 0
        waiting = pipeline.queued_readings if pipeline is not None else 0
        yield GaugeMetricFamily("algaflow_pipeline_backlog_batches", "batches waiting for the live pipeline",
                                value=backlog)  # fmt: skip
        yield GaugeMetricFamily("algaflow_pipeline_backlog_readings", "readings and events waiting for the live "
                                "pipeline (ingest waits beyond [pipeline] max_backlog_readings)", value=waiting)
        yield GaugeMetricFamily("algaflow_pipeline_restoring", "1 while the pipeline replays the store after a start",
                                value=int(bool(pipeline is not None and pipeline.restoring)))  # fmt: skip
        quarantined = pipeline.quarantine.total if pipeline is not None else 0
        yield CounterMetricFamily("algaflow_quarantined", "stored records the pipeline set aside", value=quarantined)
        yield GaugeMetricFamily("algaflow_uptime_seconds", "seconds since the service started",
                                value=time.time() - self.ingestor.started)  # fmt: skip


def registry_for(ingestor: Ingestor) -> CollectorRegistry:
    """A registry of its own per app (tests build many apps in one process)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(IngestCollector(ingestor))
    return registry
