import numpy as np
import pytest

from algaflow.catalog import load_strain, sensors_with_role
from algaflow.fusion.expected_rate import (
    CONDITION_SENSORS,
    MODEL_INPUT_SENSORS,
    ReactorGeometry,
    causal_reading,
    expected_growth_rate,
    model_rate_input,
)
from algaflow.model import reactor as r
from algaflow.sim.build import initial_state, reactor_parameters
from algaflow.sim.suites import profile_scenario

STRAIN = load_strain("chlorella_vulgaris")


def test_causal_reading_sees_only_the_past_and_drops_a_spike():
    times = np.arange(20.0)
    values = np.where(times < 10, 1.0, 2.0)
    values[5] = 50.0  # one bubble spike
    values[14] = np.nan  # a dropout: the last value is held
    seen = causal_reading(times + 0.5, times, values)
    assert seen[5] == 1.0  # the spike is outvoted by the median of the last five
    assert np.all(seen[:10] == 1.0)  # nothing of the step at 10 leaks backwards
    assert seen[10] == 1.0 and seen[12] == 2.0  # the median follows the step after three samples
    assert seen[14] == 2.0
    assert np.isnan(causal_reading(np.array([-1.0]), times, values)[0])  # before the first sample


def test_expected_rate_equals_the_reactor_model_for_a_well_mixed_loop():
    """Reference: the simulator's own volume-weighted net rate (model.reactor.reactor_growth_rate) on a state
    with the same biomass in tank and tubes and DIC far above its half-saturation."""
    scenario = profile_scenario("constant")
    p = reactor_parameters(scenario)
    reactor = ReactorGeometry(scenario.reactor.geometry, scenario.reactor.light_path_m,
                              scenario.reactor.volume_tank_l, scenario.reactor.volume_lit_l)  # fmt: skip
    for biomass, par, temperature, nitrate, oxygen in ((0.1, 300.0, 25.0, 500.0, 8.0), (1.5, 1200.0, 31.0, 3.0, 25.0),
                                                       (0.5, 0.0, 18.0, 100.0, 9.0)):  # fmt: skip
        y = initial_state(scenario)
        y[r.X_TANK] = y[r.X_LIT] = biomass
        y[r.NO3_TANK] = y[r.NO3_LIT] = nitrate
        y[r.O2_TANK] = y[r.O2_LIT] = oxygen
        y[r.DIC_TANK] = y[r.DIC_LIT] = 1e4  # f_C = 1
        y[r.ALK_TANK] = y[r.ALK_LIT] = 1e4
        y[r.TEMP] = temperature
        rates = np.empty((2, r.N_RATES))
        r.compartment_rates(y, p, par, rates, np.zeros(r.N_MEMO), 0)
        reference = r.reactor_growth_rate(y, p, par, np.zeros(r.N_MEMO), 0)
        conditions = {"par": par, "temperature": temperature, "ph": rates[1, r.PH], "dissolved_o2": oxygen,
                      "nitrate": nitrate}  # fmt: skip
        expected = expected_growth_rate(conditions, np.array(biomass), STRAIN, reactor)
        assert expected == pytest.approx(reference, rel=1e-4)


def test_dark_culture_respires_at_the_q10_rate():
    rate = expected_growth_rate({"par": np.zeros(2), "temperature": np.array([20.0, 30.0])}, np.ones(2), STRAIN,
                                ReactorGeometry())  # fmt: skip
    np.testing.assert_allclose(rate, -STRAIN.respiration_per_h * np.array([1.0, STRAIN.respiration_q10]))


def test_rate_input_telescopes_to_the_model_rate_and_needs_light():
    times = np.arange(0.0, 2.0, 1 / 60)
    par = np.where(times < 1.0, 0.0, 300.0)
    readings = {"par_surface": (times, par), "temp_tube": (times, np.full(times.size, 25.0))}
    biomass = np.full(times.size, 0.3)
    increments = model_rate_input(times, readings, biomass, STRAIN, ReactorGeometry())
    conditions = {"par": causal_reading(times, times, par), "temperature": np.full(times.size, 25.0)}
    np.testing.assert_allclose(np.cumsum(increments), expected_growth_rate(conditions, biomass, STRAIN,
                                                                           ReactorGeometry()), atol=1e-15)  # fmt: skip
    assert np.cumsum(increments)[30] < 0 < np.cumsum(increments)[-1]  # dark: respiration; lit: growth
    assert model_rate_input(times, {"temp_tube": readings["temp_tube"]}, biomass, STRAIN, ReactorGeometry()) is None


def test_reactor_geometry_checks():
    with pytest.raises(ValueError, match="geometry"):
        ReactorGeometry("sphere")
    with pytest.raises(ValueError, match="light path"):
        ReactorGeometry(light_path_m=0.0)


def test_implausible_and_missing_inputs_leave_the_model_rate_alone():
    times = np.arange(0.0, 1.0, 1 / 60)
    par, temperature = np.full(times.size, 300.0), np.full(times.size, 25.0)
    clean = model_rate_input(times, {"par_surface": (times, par), "temp_tube": (times, temperature)},
                             np.full(times.size, 0.3), STRAIN, ReactorGeometry())  # fmt: skip
    broken = temperature.copy()
    broken[20:23] = [np.nan, 250.0, -80.0]  # a dropout and two readings outside the catalog's range
    dirty = model_rate_input(times, {"par_surface": (times, par), "temp_tube": (times, broken)},
                             np.full(times.size, 0.3), STRAIN, ReactorGeometry())  # fmt: skip
    np.testing.assert_allclose(np.cumsum(dirty), np.cumsum(clean), atol=1e-15)


def test_each_condition_is_read_from_the_catalogs_sensors_the_lit_tube_first():
    assert CONDITION_SENSORS == {"par": ("par_surface",), "temperature": ("temp_tube", "temp_tank"),
                                 "ph": ("ph_tube", "ph_tank"), "dissolved_o2": ("do_tube", "do_tank"),
                                 "nitrate": ("nitrate",)}  # fmt: skip
    assert sorted(MODEL_INPUT_SENSORS) == sorted(sensors_with_role("condition"))
