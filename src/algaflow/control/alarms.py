"""Alarms from readings, through the strain's own growth factors (model.kinetics), with hysteresis.

Dissolved O2 slows growth by the factor φ_O2 = 1 − (DO / DO_max)^n; the culture needs degassing once the
O2 it has made costs more than ``loss_on`` of its growth, 1 − φ_O2 ≥ loss_on, i.e.

    DO ≥ DO_max · loss_on^(1/n)                      (on),   DO < DO_max · loss_off^(1/n)   (off)

Temperature acts through the cardinal model φ_T (CTMI); it is out of range once φ_T ≤ 1 − loss_on, on
either side of T_opt, and back in range when φ_T > 1 − loss_off.

Every function takes arrays (a batch of units); the hysteresis state is the previous flag.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import brentq

from algaflow.catalog import Strain
from algaflow.control.hysteresis import latch
from algaflow.model.kinetics import cardinal_temperature, oxygen_inhibition


@dataclass(frozen=True, slots=True)
class AlarmPolicy:
    loss_on: float = 0.2  # growth lost to the condition that raises the alarm
    loss_off: float = 0.1  # ... and below which it clears

    def __post_init__(self) -> None:
        if not 0.0 < self.loss_off < self.loss_on < 1.0:
            raise ValueError("AlarmPolicy needs 0 < loss_off < loss_on < 1")


def oxygen_growth_loss(do_mg_per_l: np.ndarray, strain: Strain) -> np.ndarray:
    """1 − φ_O2(DO): the share of growth lost to dissolved O2 (NaN where there is no reading)."""
    do = np.asarray(do_mg_per_l, dtype=float)
    loss = 1.0 - oxygen_inhibition(np.nan_to_num(do), strain.do_max_mg_per_l, strain.do_exponent)
    return np.where(np.isnan(do), np.nan, loss)


def temperature_growth_loss(temperature_c: np.ndarray, strain: Strain) -> np.ndarray:
    """1 − φ_T(T) of the cardinal temperature model (NaN where there is no reading)."""
    temperature = np.asarray(temperature_c, dtype=float)
    loss = 1.0 - cardinal_temperature(np.nan_to_num(temperature), strain.t_min_c, strain.t_opt_c, strain.t_max_c)
    return np.where(np.isnan(temperature), np.nan, loss)


def with_hysteresis(loss: np.ndarray, previous: np.ndarray, policy: AlarmPolicy) -> np.ndarray:
    """One step: on at loss ≥ loss_on, off again at loss < loss_off; NaN (no reading) keeps the previous flag."""
    loss = np.asarray(loss, dtype=float)
    return alarm_flags(loss[..., None], previous, policy)[..., 0]


def alarm_flags(loss: np.ndarray, previous: np.ndarray | bool, policy: AlarmPolicy) -> np.ndarray:
    """:func:`with_hysteresis` along time (the last axis), from the flags ``previous`` (control.hysteresis)."""
    loss = np.asarray(loss, dtype=float)
    with np.errstate(invalid="ignore"):
        return latch(loss >= policy.loss_on, loss < policy.loss_off, previous)


def degas_threshold_mg_per_l(strain: Strain, loss: float) -> float:
    """DO at which 1 − φ_O2 = loss: DO_max · loss^(1/n)."""
    return float(strain.do_max_mg_per_l * loss ** (1.0 / strain.do_exponent))


def temperature_thresholds_c(strain: Strain, loss: float) -> tuple[float, float]:
    """The temperatures below and above T_opt at which 1 − φ_T = ``loss`` (φ_T rises monotonically from T_min
    to T_opt and falls to T_max, so the alarm's loss test is a test on the temperature itself)."""
    if not 0.0 < loss < 1.0:
        raise ValueError(f"loss must lie in (0, 1) (got {loss})")

    def excess(temperature: float) -> float:
        return float(temperature_growth_loss(np.array(temperature), strain)) - loss

    low = brentq(excess, strain.t_min_c, strain.t_opt_c)
    high = brentq(excess, strain.t_opt_c, strain.t_max_c)
    return float(low), float(high)
