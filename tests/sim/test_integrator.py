"""The compiled RODAS4 integrator against SciPy's DOP853 at rtol 1e-10 on the same model and events."""

from pathlib import Path

import numpy as np
import pytest

import algaflow.scenarios
from algaflow.model import reactor as r
from algaflow.sim import integrator as integ
from algaflow.sim.build import build_batch
from algaflow.sim.reference import solve_unit_with_scipy
from algaflow.sim.run import integrate
from algaflow.sim.scenario import load_scenario, parse_scenario

SCENARIO = {
    "units": 2, "days": 20, "seed": 3,
    "events": [{"time_h": 100.3, "kind": "dose_nitrate", "value": 150},
               {"time_h": 250.0, "kind": "set_led", "value": 80}],
}  # fmt: skip


@pytest.fixture(scope="module")
def runs():
    batch = build_batch(parse_scenario(SCENARIO))
    ours = integrate(batch, np.array([0.0, batch.hours]), rtol=1e-7)
    references = [solve_unit_with_scipy(batch, unit, "DOP853", rtol=1e-10) for unit in range(len(batch))]
    return batch, ours, references


def test_harvest_event_times_agree_within_one_minute(runs):
    _, ours, references = runs
    for unit, (_, reference_log, _, _) in enumerate(references):
        ours_harvests = [t for t, kind, _, _ in ours.logs[unit] if kind == integ.HARVEST]
        reference_harvests = [t for t, kind, _ in reference_log if kind == integ.HARVEST]
        assert len(ours_harvests) == len(reference_harvests) >= 2
        np.testing.assert_allclose(ours_harvests, reference_harvests, rtol=0, atol=1.0 / 60.0)


def test_final_states_agree_to_1e_4(runs):
    _, ours, references = runs
    for unit, (final, _, _, _) in enumerate(references):
        relative = np.abs(ours.states[unit, -1] - final) / np.maximum(np.abs(final), 1e-3)
        assert relative.max() < 1e-4, relative


def test_time_events_are_applied_at_their_time(runs):
    _, ours, _ = runs
    times = {int(kind): t for t, kind, _, by_state in ours.logs[0] if not by_state}
    assert times[integ.DOSE_NITRATE] == 100.3 and times[integ.SET_LED] == 250.0


def test_error_falls_with_tolerance():
    """Global error falls with the tolerance on a smooth problem, down to the absolute-tolerance floor."""
    scenario = parse_scenario({"units": 1, "days": 3, "harvest": {"enabled": False}, "light": {"photoperiod_h": 24},
                               "temperature": {"ambient_amplitude_c": 0.0}})  # fmt: skip
    batch = build_batch(scenario)
    reference, *_ = solve_unit_with_scipy(batch, 0, "DOP853", rtol=1e-12, atol_scale=1e-6)
    errors = []
    for rtol in (1e-4, 1e-6, 1e-8):
        final = integrate(batch, np.array([batch.hours]), rtol=rtol).states[0, -1]
        errors.append(np.max(np.abs(final - reference) / np.maximum(np.abs(reference), 1e-3)))
    assert errors[0] > errors[1] > errors[2]
    assert errors[0] > 10 * errors[2]
    assert errors[2] < 1e-6


def test_outputs_are_filled_on_the_grid_and_start_at_the_initial_state():
    batch = build_batch(parse_scenario({"units": 3, "days": 2}))
    grid = np.arange(0.0, 48.0 + 1e-9, 1 / 6)
    result = integrate(batch, grid)
    assert result.states.shape == (3, grid.size, r.N_STATE)
    np.testing.assert_array_equal(result.states[:, 0], batch.y0)
    assert np.isfinite(result.states).all()


def test_sunlit_scenario_with_smoothly_varying_forcing_matches_reference():
    """Sunlight and ambient temperature vary within segments, so the Jacobian's time column is exercised."""
    path = Path(algaflow.scenarios.__file__).parent / "outdoor_scenedesmus_almeria.toml"
    batch = build_batch(load_scenario(path, units=1, days=2))
    grid = np.linspace(0.0, batch.hours, 9)
    ours = integrate(batch, grid, rtol=1e-7)
    _, _, _, reference = solve_unit_with_scipy(batch, 0, "DOP853", rtol=1e-10, times_h=grid)
    relative = np.abs(ours.states[0] - reference) / np.maximum(np.abs(reference), 1e-3)
    assert relative.max() < 1e-4, relative.max()
    assert np.ptp(ours.states[0, :, r.TEMP]) > 1.0  # the forcing did vary
