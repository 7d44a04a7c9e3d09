from pathlib import Path

import numpy as np
import pytest

import algaflow.scenarios
from algaflow.model.reactor import (
    N_MEMO,
    N_STATE,
    PRODUCED,
    REUSE_CHEMISTRY,
    REUSE_LIGHT,
    V_LIT,
    V_TANK,
    X_LIT,
    X_TANK,
    reactor_jacobian,
    reactor_rhs,
)
from algaflow.sim.build import ABSOLUTE_TOLERANCE, build_batch
from algaflow.sim.run import integrate
from algaflow.sim.scenario import load_scenario, parse_scenario
from tests.references import central_difference_jacobian


def _states(scenario, days=(0.0, 3.5, 9.0)):
    batch = build_batch(scenario)
    result = integrate(batch, np.array(days) * 24.0, rtol=1e-6)
    return batch, result


def _rhs(y, p, par, ambient):
    out = np.empty(N_STATE)
    reactor_rhs(y, p, par, ambient, out, np.zeros(N_MEMO), 0)
    return out


def _central_jacobian(y, p, par, ambient):
    """Plain central differences, one column at a time: the independent reference."""
    return central_difference_jacobian(lambda state: _rhs(state, p, par, ambient), y, 1e-5, 1e-2)


@pytest.mark.parametrize("scenario", ["lab_tubular_chlorella", "flat_panel_nannochloropsis"])
@pytest.mark.parametrize("par", [0.0, 350.0, 1800.0])
def test_grouped_jacobian_matches_column_by_column_differences(scenario, par):
    batch, result = _states(load_scenario(Path(algaflow.scenarios.__file__).parent / f"{scenario}.toml", units=1))
    for k in range(result.states.shape[1]):
        y = result.states[0, k].copy()
        p = batch.params[0].copy()
        f0 = np.empty(N_STATE)
        memo = np.zeros(N_MEMO)
        reactor_rhs(y, p, par, 21.0, f0, memo, 0)
        ours = np.empty((N_STATE, N_STATE))
        reactor_jacobian(y, p, par, 21.0, f0, memo, ABSOLUTE_TOLERANCE[:N_STATE], ours)
        reference = _central_jacobian(y, p, par, 21.0)
        # Entry-wise against the row's scale: forward differences carry √ε-level error. The produced-biomass
        # row is derived from the biomass rows (V_t J[X_t,:] + V_l J[X_l,:]) and carries their absolute error.
        row_scale = np.maximum(np.abs(reference).max(axis=1), 1e-12)
        row_scale[PRODUCED] = p[V_TANK] * row_scale[X_TANK] + p[V_LIT] * row_scale[X_LIT]
        assert np.max(np.abs(ours - reference) / row_scale[:, None]) < 1e-6


def test_memo_reuse_is_exact_when_its_inputs_are_unchanged():
    batch, result = _states(parse_scenario({"units": 1, "days": 4, "seed": 3}), days=(2.0,))
    y = result.states[0, 0].copy()
    p = batch.params[0].copy()
    memo = np.zeros(N_MEMO)
    plain = np.empty(N_STATE)
    reactor_rhs(y, p, 900.0, 20.0, plain, memo, 0)
    for reuse in (REUSE_LIGHT, REUSE_CHEMISTRY, REUSE_LIGHT | REUSE_CHEMISTRY):
        reused = np.empty(N_STATE)
        reactor_rhs(y, p, 900.0, 20.0, reused, memo.copy(), reuse)
        np.testing.assert_allclose(reused, plain, rtol=1e-12, atol=1e-12 * np.abs(plain).max())


def test_produced_biomass_rate_is_the_volume_weighted_biomass_rate():
    """dP/dt = V_t dX_t/dt + V_l dX_l/dt: loop exchange moves biomass, it does not make any."""
    batch, result = _states(parse_scenario({"units": 3, "days": 4, "seed": 5}), days=(1.0, 3.0))
    for unit in range(3):
        for k in range(2):
            y, p = result.states[unit, k], batch.params[unit]
            f = _rhs(y.copy(), p.copy(), 700.0, 22.0)
            assert f[-1] == pytest.approx(p[V_TANK] * f[X_TANK] + p[V_LIT] * f[X_LIT], rel=1e-12)
