"""A dry weight typed in late, after 30 days of 1-minute data: how long the live pipeline takes to absorb it,
against replaying the unit's whole stored record (what the pipeline did before issue 20), measured in the
same run on the same SQLite store.

One unit, a logistic culture read by od750 every minute for --days days, harvested 70 % every 7 days, is
processed by the live pipeline; then a dry weight taken --late-h hours before the last sample arrives:

- after (today): the chain goes back to its saved point before the sample and re-filters from there
  (service.pipeline's fixed-lag re-filtering);
- before (the peer): a pipeline started afresh replays the unit's whole stored record, the dry weight in it.

Both must give the same estimates (printed: the largest difference); the ratio is before / after.

    .venv/bin/python bench/late_dry_weight.py [--days 30] [--late-h 6 48]
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

from algaflow.catalog import load_strain
from algaflow.service.config import PipelineSettings
from algaflow.service.pipeline import LivePipeline
from algaflow.store import ReadingBatch, StoredEvent, open_store
from algaflow.store.base import IngestBatch, to_time_us

STRAIN = load_strain("chlorella_vulgaris")


def stored_unit(path: Path, days: int) -> int:
    """A store with one unit's ``days`` of 1-minute od750 readings and weekly harvests; returns the number of
    readings."""
    minutes = days * 24 * 60
    start = datetime.now(UTC) - timedelta(days=days, hours=1)
    rng = np.random.default_rng(1)
    hours = np.arange(minutes) / 60.0
    since_harvest = hours % (7 * 24)
    biomass = 3.0 / (1.0 + 14.0 * np.exp(-0.05 * since_harvest))
    od = biomass * STRAIN.od750_per_g_per_l + rng.normal(0, 0.005, minutes)
    with open_store(path) as store:
        store.register_unit("r1", {"strain": STRAIN.name, "volume_l": 80.0, "sensors": ["od750"]})
        times = np.array([to_time_us(start) + int(h * 3.6e9) for h in hours], dtype=np.int64)
        readings = ReadingBatch(np.full(minutes, "r1", dtype=object), np.full(minutes, "od750", dtype=object), times,
                                od, np.zeros(minutes, dtype=np.int8))  # fmt: skip
        harvests = [StoredEvent("r1", int(times[k]), "harvest", {"fraction": 0.7})
                    for k in range(7 * 24 * 60, minutes, 7 * 24 * 60)]  # fmt: skip
        for first in range(0, minutes, 50_000):
            part = slice(first, first + 50_000)
            batch = ReadingBatch(readings.unit_id[part], readings.sensor[part], readings.time_us[part],
                                 readings.value[part], readings.quality[part])  # fmt: skip
            keys = [("r1", first + k, int(t)) for k, t in enumerate(batch.time_us.tolist())]
            store.ingest(IngestBatch(batch, harvests if first == 0 else [], keys))
    return minutes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--late-h", type=float, nargs="+", default=[6.0, 48.0])
    arguments = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "late.db"
        readings = stored_unit(path, arguments.days)
        with open_store(path) as store:
            live = LivePipeline(store, PipelineSettings(checkpoint_every_s=1e9))
            began = time.perf_counter()
            live.restore()  # the unit's whole record, as it would have streamed in
            print(f"{readings:,} readings of one unit processed in {time.perf_counter() - began:.1f} s")
            last_us = int(store.estimates("r1").time_us.iloc[-1])
            for late_h in arguments.late_h:
                sample = StoredEvent("r1", last_us - int(late_h * 3.6e9) + 30_000_000, "dry_weight_sample",
                                     {"g_per_l": 1.0})  # fmt: skip
                store.write_events([sample])
                began = time.perf_counter()
                live.process(ReadingBatch([], [], [], [], []), [sample])
                after_s = time.perf_counter() - began
                absorbed = store.estimates("r1")
                fresh = LivePipeline(store, PipelineSettings(checkpoint_every_s=1e9))  # no checkpoint: replays all
                began = time.perf_counter()
                fresh.restore()
                before_s = time.perf_counter() - began
                replayed = store.estimates("r1")
                difference = float(np.max(np.abs(absorbed.biomass_g_per_l.to_numpy()
                                                  - replayed.biomass_g_per_l.to_numpy())))  # fmt: skip
                print(f"late_dry_weight: {late_h:g} h late after {arguments.days} days of 1-min data: absorbed in "
                      f"{1e3 * after_s:.1f} ms vs replaying the unit {1e3 * before_s:.0f} ms: "
                      f"{before_s / after_s:.0f}x faster; largest biomass difference {difference:.1e} g/L")
                live = fresh  # the next sample goes to a pipeline in the same state


if __name__ == "__main__":
    main()
