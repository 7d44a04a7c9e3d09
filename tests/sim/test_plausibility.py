"""Plausibility of every shipped strain against published ranges (acceptance point 5)."""

import numpy as np
import pytest

from algaflow.catalog import strain_names
from algaflow.model import reactor as r
from algaflow.model.gas import AIR_O2_FRACTION, oxygen_saturation
from algaflow.sim.build import build_batch
from algaflow.sim.run import integrate
from algaflow.sim.scenario import parse_scenario

MEDIA = {  # the medium each strain is grown in
    "chlorella_vulgaris": {},
    "scenedesmus_almeriensis": {},
    "nannochloropsis_oceanica": {"alkalinity_mmol_per_l": 2.4, "dic_mmol_per_l": 2.2},
    "arthrospira_platensis": {"nitrate_mg_per_l": 1800, "alkalinity_mmol_per_l": 150, "dic_mmol_per_l": 140},
}


def lab_scenario(strain: str, **extra) -> dict:
    strain_setpoint = {"arthrospira_platensis": 34, "scenedesmus_almeriensis": 32, "nannochloropsis_oceanica": 23}
    return {"strain": strain, "units": 1, "days": 30, "medium": MEDIA[strain],
            "temperature": {"setpoint_c": strain_setpoint.get(strain, 28)}, "variation": {
                "initial_biomass_cv": 0, "par_cv": 0, "setpoint_sd_c": 0}} | extra  # fmt: skip


@pytest.mark.parametrize("strain", strain_names())
def test_peak_productivity_and_co2_per_biomass_in_published_ranges(strain):
    scenario = parse_scenario(lab_scenario(strain))
    batch = build_batch(scenario)
    grid = np.arange(0.0, batch.hours + 1e-9, 24.0)
    result = integrate(batch, grid)
    volume = batch.params[0, r.V_TANK] + batch.params[0, r.V_LIT]
    produced = result.states[0, :, r.PRODUCED]
    daily = np.diff(produced) / volume  # g/L/day, harvested biomass included
    assert 0.1 <= daily.max() <= 2.0, daily.max()
    strain_data = scenario.resolved_strain()
    co2_per_biomass = strain_data.carbon_fraction * 44.009 / 12.011
    assert 1.6 <= co2_per_biomass <= 1.9
    assert any(kind == 1 for _, kind, _, _ in result.logs[0]), "a culture that stops growing gets harvested"


def test_dissolved_oxygen_rises_above_saturation_without_degassing_and_growth_falls():
    # No sparging, O2 leaves only through a weak tube headspace: DO builds up and suffocates the culture.
    common = lab_scenario("chlorella_vulgaris", days=4, harvest={"enabled": False},
                          light={"photoperiod_h": 24, "par_umol": 800})  # fmt: skip
    sealed = parse_scenario(common | {"alarms": {"enabled": False},
                                      "reactor": {"air_flow_l_per_min": 0.0, "kla_lit_per_h": 0.05}})  # fmt: skip
    batch = build_batch(sealed)
    grid = np.arange(0.0, batch.hours + 1e-9, 1.0)
    states = integrate(batch, grid).states[0]
    saturation = oxygen_saturation(states[-1, r.TEMP], 0.0, AIR_O2_FRACTION)
    assert states[-1, r.O2_LIT] > 1.5 * saturation
    do_max = sealed.resolved_strain().do_max_mg_per_l
    from algaflow.model.kinetics import oxygen_inhibition

    assert oxygen_inhibition(states[-1, r.O2_LIT], do_max, 2.0) < 0.8
    # The same culture with the DO alarm and degassing grows more.
    degassed = parse_scenario(common | {"alarms": {"enabled": True, "do_high_mg_per_l": 16, "do_low_mg_per_l": 10},
                                        "reactor": {"kla_lit_per_h": 0.05}})  # fmt: skip
    degassed_states = integrate(build_batch(degassed), grid).states[0]
    assert degassed_states[-1, r.PRODUCED] > 1.1 * states[-1, r.PRODUCED]


@pytest.mark.parametrize("temperature", [3.0, 43.0])
def test_temperature_outside_cardinal_range_stops_growth(temperature):
    scenario = parse_scenario(lab_scenario("chlorella_vulgaris", days=3, harvest={"enabled": False},
                                           temperature={"setpoint_c": temperature, "control_time_constant_h": 0.05},
                                           initial={"temperature_c": temperature, "biomass_g_per_l": 0.5}))  # fmt: skip
    batch = build_batch(scenario)
    states = integrate(batch, np.array([0.0, batch.hours])).states[0]
    # Only respiration remains: biomass does not grow.
    assert states[-1, r.X_TANK] < states[0, r.X_TANK]
    assert states[-1, r.PRODUCED] < 0.0
