"""Compile the fusion kernels ahead of their first real use.

Numba compiles each kernel on its first call and caches the machine code on disk; on a fresh install the
growth chain alone takes about 30 s to compile on a 2-core machine. A service calls
:func:`warm_up_kernels` from a background thread as it starts, so that the first unit view's sensor panel
and the live pipeline's first frame do not pay it. The calls go through the public routines on a small
synthetic record, with every path a unit's data can take: the batch filter and smoother, the online filter
and the live pipeline's condition readings and stuck check, and the sensor report (sensor health, drift
between two biomass sensors, the information each sensor carries, and, from the incident light, the batch
filter with the model's rate input).
"""

from __future__ import annotations

import time

import numpy as np

from algaflow.catalog import load_strain
from algaflow.fusion.growth import filter_growth, smooth_growth
from algaflow.fusion.growth_model import GrowthModel
from algaflow.fusion.online import OnlineGrowthFilter
from algaflow.fusion.online_rate import OnlineConditions
from algaflow.fusion.sensor_health import stuck_samples
from algaflow.fusion.sensor_information import sensor_report

SAMPLES = 240  # 4 h at 1 min: past the drift check's two windows


def warm_up_kernels(strain: str = "chlorella_vulgaris") -> float:
    """Run the fusion routines once on a synthetic 4-hour record of a growing culture; returns the seconds
    it took (mostly compilation on a fresh install, well under a second once cached)."""
    start = time.perf_counter()
    rng = np.random.default_rng(0)
    times_h = np.arange(SAMPLES) / 60.0
    biomass = 0.3 * np.exp(0.03 * times_h)
    od = biomass + 0.005 * rng.standard_normal(SAMPLES)
    estimates = filter_growth(times_h, od)
    smooth_growth(estimates)
    online = OnlineGrowthFilter()
    online.add_unit(GrowthModel())
    online.update(np.zeros(SAMPLES, dtype=np.int64), times_h, od)
    conditions = OnlineConditions()
    conditions.add_unit()
    conditions.update(np.zeros(SAMPLES, dtype=np.int64), {"par_surface": np.full(SAMPLES, 300.0)})
    stuck_samples(od, 0.005, 0.001)
    readings = {"od750": od, "turbidity_tank": 300.0 * biomass + 2.0 * rng.standard_normal(SAMPLES),
                "temp_tank": 25.0 + 0.05 * rng.standard_normal(SAMPLES),
                "ph_tank": 7.5 + 0.01 * rng.standard_normal(SAMPLES),
                "do_tank": 9.0 + 0.1 * rng.standard_normal(SAMPLES),
                "par_surface": np.full(SAMPLES, 300.0)}  # fmt: skip
    sensor_report(times_h, readings, [], load_strain(strain))
    return time.perf_counter() - start
