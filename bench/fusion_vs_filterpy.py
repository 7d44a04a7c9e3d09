"""Speed of the batched growth estimator against FilterPy's ExtendedKalmanFilter, in one run.

The same 4-state model (biomass X, μ, OD baseline b, drift d; fusion.growth) and the same OD samples:
1,000 units × 1,440 one-minute steps. algaflow filters the whole batch in one compiled call; FilterPy's
``ExtendedKalmanFilter`` (predict with the process factor's mean, Jacobian F and Q, update with the linear
OD factor and its noise, given per call as FilterPy allows) is looped over units and steps as
its documentation shows, keeping μ only; ours keeps every step's mean and covariance
(``keep_priors=False``: not the priors a smoother would need). FilterPy runs on ``--peer-units`` of
them (its rate per unit-update does not depend on how many units it loops over). For the comparison
our robust parts are switched off (Student-t ν → ∞, no gate), so both compute the same filter; the
largest difference of their μ is printed.
Ours is timed best of 3 after a first call (compilation, first touch of memory), reported too.
Then one unit-year at 1-minute sampling is filtered and RTS-smoothed, and the time reported.

    .venv/bin/python bench/fusion_vs_filterpy.py [--units 1000] [--steps 1440] [--peer-units 20]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from filterpy.kalman import ExtendedKalmanFilter

from algaflow.fusion.growth import filter_growth, smooth_growth
from algaflow.fusion.growth_model import BASELINE, BIOMASS, N_GROWTH_STATE, GrowthModel
from algaflow.fusion.growth_step import first_valid_index, initial_belief, process_factor


def cultures(units: int, steps: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Exponential cultures (μ 0.02–0.08 1/h, halving at mid-run), OD = X + b + noise, 1-min samples."""
    rng = np.random.default_rng(seed)
    times = np.broadcast_to(np.arange(steps) / 60.0, (units, steps)).copy()
    rate = rng.uniform(0.02, 0.08, (units, 1)) * np.where(np.arange(steps) < steps // 2, 1.0, 0.5)
    log_biomass = np.log(rng.uniform(0.1, 0.5, (units, 1))) + np.cumsum(rate / 60.0, axis=1)
    od = np.exp(log_biomass) + rng.normal(0, 0.005, (units, 1)) + rng.normal(0, 0.005, (units, steps))
    return times, od


class _GrowthEKF(ExtendedKalmanFilter):
    """FilterPy's EKF with the process factor's non-linear mean X e^{μΔt} (its documented extension point,
    ``predict_x``); F and Q are the factor's Jacobian and noise, set before each ``predict``."""

    predicted: np.ndarray

    def predict_x(self, u=0):
        self.x = self.predicted[:, None].copy()


def filterpy_growth_rate(times: np.ndarray, od: np.ndarray, model: GrowthModel) -> np.ndarray:
    """FilterPy's EKF on the same factors, one unit at a time."""
    parameters = model.as_array()
    n = N_GROWTH_STATE
    slope, noise_abs, noise_rel = model.od_per_g_per_l, model.od_noise_sd, model.od_relative_noise
    out = np.empty(od.shape)
    transition, process_noise, predicted = np.empty((n, n)), np.empty((n, n)), np.empty(n)
    row = np.zeros((1, n))
    row[0, BIOMASS], row[0, BASELINE] = slope, 1.0  # OD = a X + b: linear

    for u in range(od.shape[0]):
        ekf = _GrowthEKF(dim_x=n, dim_z=1)
        mean, cov = np.empty(n), np.empty((n, n))
        initial_belief(od[u, first_valid_index(times[u], od[u], parameters)], parameters, mean, cov)
        ekf.x, ekf.P = mean[:, None].copy(), cov.copy()
        for k in range(od.shape[1]):
            dt = times[u, k] - times[u, k - 1] if k else 0.0
            process_factor(dt, 1.0, 0.0, parameters, ekf.x[:, 0], transition, process_noise, predicted)
            ekf.F, ekf.Q, ekf.predicted = transition, process_noise, predicted
            ekf.predict()
            expected = float((row @ ekf.x)[0, 0])
            level = max(abs(expected), abs(od[u, k]))
            variance = noise_abs**2 + (noise_rel * level) ** 2
            ekf.update(np.array([[od[u, k]]]), lambda x: row, lambda x, p=expected: np.array([[p]]),
                       R=np.array([[variance]]))
            out[u, k] = ekf.x[1, 0]
    return out


def _timed(function, *args, **kwargs):
    start = time.perf_counter()
    result = function(*args, **kwargs)
    return result, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--units", type=int, default=1000)
    parser.add_argument("--steps", type=int, default=1440)
    parser.add_argument("--peer-units", type=int, default=20)
    args = parser.parse_args()
    model = GrowthModel(student_t_dof=1e12, gate_sigma=1e12)  # no robust parts: the filter FilterPy computes
    times, od = cultures(args.units, args.steps)
    ours, first_s = _timed(filter_growth, times, od, model=model, keep_priors=False)  # compiles, maps memory
    ours_s = min(_timed(filter_growth, times, od, model=model, keep_priors=False)[1] for _ in range(3))
    ours_rate = args.units * args.steps / ours_s
    peer_units = min(args.peer_units, args.units)
    start = time.perf_counter()
    peer = filterpy_growth_rate(times[:peer_units], od[:peer_units], model)
    peer_s = time.perf_counter() - start
    peer_rate = peer_units * args.steps / peer_s
    difference = np.max(np.abs(ours.growth_rate_per_h[:peer_units] - peer))
    print(f"algaflow : {args.units} units × {args.steps} steps in {ours_s:.3f} s = {ours_rate:,.0f} unit-updates/s "
          f"(best of 3; first call {first_s:.2f} s with compilation)")
    print(f"FilterPy : {peer_units} units × {args.steps} steps in {peer_s:.3f} s = {peer_rate:,.0f} unit-updates/s")
    print(f"largest |μ difference| on the shared units: {difference:.2e} 1/h")
    year = 365 * 24 * 60
    year_times, year_od = cultures(1, year, seed=1)
    year_od = np.clip(year_od, None, 9.0)  # the synthetic year would grow past the photometer's range
    year_first_s = _timed(lambda: smooth_growth(filter_growth(year_times, year_od)))[1]
    year_s = min(_timed(lambda: smooth_growth(filter_growth(year_times, year_od)))[1] for _ in range(2))
    print(f"one unit-year at 1 min ({year:,} samples), robust filter + RTS smoother: {year_s:.2f} s "
          f"(first call, compiling: {year_first_s:.2f} s)")
    print(f"fusion_vs_filterpy: {ours_rate / peer_rate:.0f}x vs FilterPy ExtendedKalmanFilter (unit-updates/s "
          f"{ours_rate:,.0f} vs {peer_rate:,.0f}; max μ difference {difference:.1e}; "
          f"unit-year smoothed in {year_s:.1f} s)")


if __name__ == "__main__":
    main()
