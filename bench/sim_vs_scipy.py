"""Reactor-days per second: algaflow's compiled RODAS4 batch vs SciPy solve_ivp RK45 (one scenario at a time).

Same model, same events (harvests every few days, lamp switching twice a day). Accuracy of both is measured
against DOP853 at rtol 1e-10 on the first units. SciPy is timed on a sample of units (it is ~1-2 s per
unit) and its rate extrapolated per reactor-day; algaflow runs the whole batch.
Usage: .venv/bin/python bench/sim_vs_scipy.py [units] [scipy_units]
"""

import sys
import time

import numpy as np

from algaflow.sim.build import build_batch
from algaflow.sim.reference import solve_unit_with_scipy
from algaflow.sim.run import integrate
from algaflow.sim.scenario import parse_scenario

UNITS = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
SCIPY_UNITS = int(sys.argv[2]) if len(sys.argv) > 2 else 6
DAYS = 30.0
RTOL_OURS = 2e-5
RTOL_SCIPY = 1e-6


def relative_error(final: np.ndarray, reference: np.ndarray) -> float:
    return float(np.max(np.abs(final - reference) / np.maximum(np.abs(reference), 1e-3)))


def main() -> None:
    batch = build_batch(parse_scenario({"units": UNITS, "days": DAYS, "seed": 11}))
    end = np.array([batch.hours])
    integrate(batch.rows(0, 2), end, rtol=RTOL_OURS)  # compile outside the timing
    started = time.perf_counter()
    ours = integrate(batch, end, rtol=RTOL_OURS)
    ours_seconds = time.perf_counter() - started
    harvests = np.mean([np.sum(log[:, 1] == 1) for log in ours.logs])
    ours_rate = UNITS * DAYS / ours_seconds

    scipy_seconds = 0.0
    errors_ours, errors_scipy = [], []
    for unit in range(SCIPY_UNITS):
        started = time.perf_counter()
        final_scipy, *_ = solve_unit_with_scipy(batch, unit, "RK45", rtol=RTOL_SCIPY, atol_scale=1.0)
        scipy_seconds += time.perf_counter() - started
        reference, *_ = solve_unit_with_scipy(batch, unit, "DOP853", rtol=1e-10)
        errors_scipy.append(relative_error(final_scipy, reference))
        errors_ours.append(relative_error(ours.states[unit, -1], reference))
    scipy_rate = SCIPY_UNITS * DAYS / scipy_seconds
    # Single-thread figure too: the batch uses every core, SciPy one.
    started = time.perf_counter()
    integrate(batch.rows(0, 1), end, rtol=RTOL_OURS)
    single_rate = DAYS / (time.perf_counter() - started)
    print(f"algaflow: {UNITS} units x {DAYS:g} d in {ours_seconds:.2f} s = {ours_rate:,.0f} reactor-days/s "
          f"({harvests:.1f} harvests/unit, max error {max(errors_ours):.1e}); one unit alone {single_rate:,.0f}/s")
    print(f"scipy RK45 rtol {RTOL_SCIPY:g}: {SCIPY_UNITS} units in {scipy_seconds:.2f} s = {scipy_rate:,.1f} "
          f"reactor-days/s (max error {max(errors_scipy):.1e})")
    equal_or_better = max(errors_ours) <= max(errors_scipy)
    print(f"sim_vs_scipy: {ours_rate / scipy_rate:.0f}x vs scipy RK45 (batch of {UNITS}; single unit "
          f"{single_rate / scipy_rate:.0f}x; accuracy {'equal or better' if equal_or_better else 'WORSE'}: "
          f"{max(errors_ours):.1e} vs {max(errors_scipy):.1e} against DOP853 rtol 1e-10)")


if __name__ == "__main__":
    main()
