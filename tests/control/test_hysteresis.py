"""The vectorised latch against the step-by-step rule it replaces, on random sequences."""

import numpy as np
import pytest

from algaflow.control.hysteresis import latch


def stepwise(turn_on, turn_off, previous):
    flags, state = [], previous
    for on, off in zip(turn_on, turn_off, strict=True):
        state = True if on else False if off else state
        flags.append(state)
    return flags


@pytest.mark.parametrize("seed", range(5))
def test_latch_equals_the_step_by_step_rule(seed):
    rng = np.random.default_rng(seed)
    level = rng.uniform(0, 1, (6, 200))
    level[rng.random(level.shape) < 0.1] = np.nan
    with np.errstate(invalid="ignore"):
        turn_on, turn_off = level >= 0.8, level < 0.3
    previous = rng.random(6) < 0.5
    got = latch(turn_on, turn_off, previous)
    for unit in range(6):
        assert got[unit].tolist() == stepwise(turn_on[unit], turn_off[unit], bool(previous[unit]))
    assert latch(turn_on[0], turn_off[0]).tolist() == stepwise(turn_on[0], turn_off[0], False)


def test_empty_sequences_and_contradictions():
    assert latch(np.zeros((3, 0), bool), np.zeros((3, 0), bool), np.ones(3, bool)).shape == (3, 0)
    with pytest.raises(ValueError, match="both"):
        latch([True], [True])
