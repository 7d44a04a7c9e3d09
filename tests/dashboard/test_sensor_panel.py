"""The unit view's sensor panel from a store: the same ranking as the sensor report on the same readings (its
own reference, fusion.sensor_information), faults where they were put, and the calibration the chain uses."""

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from algaflow.catalog import load_strain
from algaflow.catalog.frames import Frame
from algaflow.dashboard.sensor_panel import HOUR_US, calibration_text, panel_row, sensor_panel
from algaflow.fusion.calibration import fit_biomass_calibration
from algaflow.fusion.sensor_information import sensor_report
from algaflow.store import open_store
from algaflow.store.base import to_time_us

STRAIN = load_strain("chlorella_vulgaris")


def day_of_readings(seed: int = 0) -> tuple[list[Frame], np.ndarray, dict[str, np.ndarray]]:
    """A day at 1 min: od750 and turbidity_tank read one growing culture, turbidity stuck for the last 13 h; the
    tube thermometer reads 1.5 °C above the tank's (a probe offset: the loop mixes fast)."""
    rng = np.random.default_rng(seed)
    end = datetime.now(UTC).replace(second=0, microsecond=0)
    minutes = np.arange(1440)
    times = [end - timedelta(minutes=int(1439 - m)) for m in minutes]
    biomass = 0.3 * np.exp(0.03 * minutes / 60)
    values = {"od750": biomass * STRAIN.od750_per_g_per_l + rng.normal(0, 0.005, minutes.size),
              "turbidity_tank": biomass * STRAIN.turbidity_ntu_per_g_per_l + rng.normal(0, 1.0, minutes.size),
              "temp_tank": 25.0 + rng.normal(0, 0.05, minutes.size),
              "temp_tube": 26.5 + rng.normal(0, 0.05, minutes.size)}  # fmt: skip
    values["turbidity_tank"][-780:] = values["turbidity_tank"][-781]
    frames = [Frame(unit_id="u1", time=t, seq=k, readings={s: float(v[k]) for s, v in values.items()})
              for k, t in enumerate(times)]  # fmt: skip
    return frames, np.array([to_time_us(t) for t in times]), values


@pytest.fixture
def store(tmp_path):
    with open_store(tmp_path / "algaflow.db") as opened:
        opened.register_unit("u1", {"strain": "chlorella_vulgaris", "volume_l": 80.0,
                                    "sensors": ["od750", "turbidity_tank", "temp_tank", "temp_tube"]})
        yield opened


def test_the_panel_is_the_sensor_report_of_the_last_day(store):
    frames, times_us, values = day_of_readings()
    store.ingest(frames)
    end_us = int(times_us[-1]) + 1
    rows = sensor_panel(store, "u1", end_us)
    start_us = end_us - 24 * HOUR_US
    reference = sensor_report((times_us - start_us) / HOUR_US, values, [], STRAIN, 80.0)
    assert rows == [panel_row(row) for row in reference]
    by_sensor = {row["sensor"]: row for row in rows}
    assert by_sensor["od750"]["status"] == "used" and by_sensor["turbidity_tank"]["status"] == "stuck"
    assert by_sensor["temp_tank"]["status"] == by_sensor["temp_tube"]["status"] == "disagrees"
    assert by_sensor["od750"]["missing"] == "0 %" and by_sensor["temp_tank"]["flagged"] == "–"
    assert sensor_panel(store, "u1", start_us) == []  # nothing in the day before


def test_the_calibration_line_names_the_curve_in_use():
    metadata = {"strain": "chlorella_vulgaris", "sensors": ["od750"]}
    catalog = calibration_text(metadata, None)
    assert f"{STRAIN.od750_per_g_per_l:.4g} X" in catalog and "catalog slope" in catalog
    dry_weight = np.linspace(0.1, 2.0, 10)
    curve = fit_biomass_calibration(dry_weight, 0.01 + 1.5 * dry_weight + np.random.default_rng(1).normal(0, 0.01, 10),
                                    "od750", "chlorella_vulgaris")  # fmt: skip
    fitted = calibration_text(metadata, curve)
    assert f"{curve.slope:.4g} ± " in fitted and "10 paired samples" in fitted and "0.1–2 g/L" in fitted
    assert "none yet" in calibration_text({"strain": "chlorella_vulgaris"}, None)
