import pytest

from algaflow.catalog import ROLES, SENSORS, sensor, sensors_with_role

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


def test_every_sensor_has_known_roles_and_a_condition_exactly_where_it_reads_one():
    for spec in SENSORS.values():
        assert spec.roles and set(spec.roles) <= set(ROLES), spec.name
        assert (spec.condition is not None) == ("condition" in spec.roles), spec.name
        assert spec.preference >= 1
    assert {role for spec in SENSORS.values() for role in spec.roles} == set(ROLES)  # no role left unused


def test_the_biomass_sensors_come_in_order_of_preference():
    assert sensors_with_role("biomass") == ("od750", "od680", "turbidity_tank", "turbidity_tube")


def test_lab_samples_include_dry_weight_and_cell_count():
    assert {"dry_weight", "cell_count"} <= set(sensors_with_role("lab"))
    assert sensor("cell_count").unit == "cells/mL" and sensor("cell_count").relative_noise


def test_a_sensor_with_two_uses_lists_both_once():
    for name in ("ph_tank", "temp_tank"):
        assert name in sensors_with_role("storage") and name in sensors_with_role("condition")
    assert set(sensors_with_role("gas")) == {"co2_gas_in", "co2_gas_out", "air_flow"}
    assert set(sensors_with_role("storage")) == {"ph_tank", "dco2_tank", "temp_tank"}


def test_an_unknown_role_lists_the_roles():
    with pytest.raises(KeyError, match=r"biomass.*lab"):
        sensors_with_role("probe")
