import pytest

from algaflow.catalog import SENSORS, sensor

DESIGN_CATALOG = {  # DESIGN.md §4: name → unit
    "temp_tank": "°C", "temp_tube": "°C", "ph_tank": "pH", "ph_tube": "pH", "do_tank": "mg/L", "do_tube": "mg/L",
    "dco2_tank": "mg/L", "od680": "AU", "od750": "AU", "turbidity_tank": "NTU", "turbidity_tube": "NTU",
    "par_surface": "µmol m⁻² s⁻¹", "par_back": "µmol m⁻² s⁻¹", "led_power": "%", "co2_gas_in": "ppm",
    "co2_gas_out": "ppm", "o2_gas_out": "%", "air_flow": "L/min", "water_flow": "L/min", "level": "L",
    "nitrate": "mg/L", "temp_ambient": "°C", "dry_weight": "g/L", "cell_count": "cells/mL",
}  # fmt: skip


def test_catalog_matches_design_names_and_units():
    assert {name: spec.unit for name, spec in SENSORS.items()} == DESIGN_CATALOG


def test_every_sensor_has_a_sane_range_noise_and_period():
    for spec in SENSORS.values():
        low, high = spec.range
        assert low < high
        assert spec.noise_sd >= 0 and spec.resolution > 0 and spec.period_s > 0


def test_unknown_sensor_lists_the_catalog():
    with pytest.raises(KeyError, match=r"temp_tank.*cell_count"):
        sensor("ph_probe_3")
