"""CO2 captured from the gas balance: what the sparged gas loses, minus what stays dissolved.

With the molar gas flow ṅ (mol/h, from the air flow at 25 °C, 1 atm), the CO2 mole fractions x_in and
x_out of the inlet and exhaust gas (ppm), the culture volume V (L) and its dissolved inorganic carbon
DIC (mmol/L), the carbon fixed up to time t is

    U(t) = ∫_{t₀}^{t} ṅ (x_in − x_out) 10⁻⁶ dt                         (mol CO2 taken from the gas)
    S(t) = V [DIC(t) − DIC(t₀)] 10⁻³, steps across a harvest left out       (mol stored as DIC)
    CO2(t) = M_CO2 [U(t) − S(t)]                                            (g CO2)

U by the trapezoid rule on the exhaust analyser's samples (x_in, ṅ interpolated there). A harvest
swaps culture for medium, so the DIC step across it is not uptake and is left out of S. DIC levels
are read from local least-squares lines over ``averaging_window_h`` (:func:`dic_storage`), not single
samples, whose noise would otherwise offset the whole record. DIC comes from the tank's dissolved CO2
and pH (the tank stands for the whole loop): DIC = CO2* (1 + K1/[H⁺] + K1 K2/[H⁺]²) (K1, K2 of
:func:`algaflow.model.chemistry.equilibrium_constants`); without those sensors S is 0 and the result is
the CO2 taken from the gas.

Uncertainty (sd of CO2(t)), independent parts added in variance:

    random:     Σ_k (w_k ṅ_k 10⁻⁶)² (σ_in² + σ_out²)                w_k the trapezoid weights
    analysers:  (σ_offset ∫ṅ dt 10⁻⁶)²                                 an offset between the two analysers
    flow meter: (σ_flow,rel U)²                                        its calibration
    storage:    V² 10⁻⁶ [Var of the window lines' difference + a²(t) + a²(t_seg)]

σ_DIC of one sample by the delta method from the catalog noise of the pH and dCO2 probes;
a = DIC √(σ_CO2,rel² + (∂lnDIC/∂pH σ_pH)²) the accuracy of a DIC level (probe calibration, drift, lag),
independent at the two ends of each segment's difference.
The gas route sees only the gas that the exhaust analyser measures: CO2 a reactor takes up elsewhere
(open tubes, a degasser vented to air) is missing from it, and the biomass route is the reference.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numba import njit
from scipy.integrate import cumulative_trapezoid

from algaflow.catalog import SENSORS, sensors_with_role
from algaflow.fusion.timeline import last_sample_index
from algaflow.model.chemistry import equilibrium_constants
from algaflow.model.gas import CO2_MOLAR_MASS_G, gas_molar_flow_mol_per_h

GAS_SENSORS = sensors_with_role("gas")  # inlet and exhaust CO2, air flow: all needed
STORAGE_SENSORS = sensors_with_role("storage")  # DIC from pH and dCO2; temperature sets K1, K2


@dataclass(frozen=True, slots=True)
class GasBalanceUncertainty:
    """Calibration errors common to a whole record (the random noise comes from the sensor catalog)."""

    analyser_offset_sd_ppm: float = 10.0  # inlet vs exhaust analyser, after zeroing on the same gas
    flow_relative_sd: float = 0.02  # mass-flow meter, fraction of reading
    ph_level_sd: float = 0.02  # pH electrode accuracy after a two-point calibration (offset, drift, lag)
    dissolved_co2_relative_sd: float = 0.05  # dCO2 probe accuracy, fraction of reading
    averaging_window_h: float = 1.0  # DIC levels are read from lines over this window (it changes over hours)

    def __post_init__(self) -> None:
        for name in ("analyser_offset_sd_ppm", "flow_relative_sd", "ph_level_sd", "dissolved_co2_relative_sd",
                     "averaging_window_h"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"GasBalanceUncertainty.{name} must be ≥ 0 (got {getattr(self, name)})")


@dataclass(slots=True)
class GasBalance:
    """Per exhaust sample: cumulative CO2 (g) taken from the gas, stored as DIC, fixed (their difference)
    and the sd of the fixed amount."""

    times_h: np.ndarray
    taken_from_gas_g: np.ndarray
    stored_g: np.ndarray
    captured_g: np.ndarray
    captured_sd: np.ndarray

    def at(self, times_h: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(captured, sd) at ``times_h``, causally: the last exhaust sample at or before each time
        (NaN before the first)."""
        index = last_sample_index(self.times_h, times_h)
        valid = index >= 0
        captured = np.where(valid, self.captured_g[np.maximum(index, 0)], np.nan)
        sd = np.where(valid, self.captured_sd[np.maximum(index, 0)], np.nan)
        return captured, sd


@njit(cache=True, error_model="numpy")
def dissolved_inorganic_carbon(dissolved_co2_mmol_per_l: np.ndarray, ph: np.ndarray, temperature_c: np.ndarray,
                               salinity: float) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """DIC = CO2* (1 + K1/h + K1 K2/h²), h = 10^−pH (mmol/L), and ∂ln DIC/∂pH = ln 10 (K1/h + 2 K1 K2/h²)/(…)."""
    dic = np.empty(ph.shape[0])
    slope = np.empty(ph.shape[0])
    for k in range(ph.shape[0]):
        constants = equilibrium_constants(temperature_c[k], salinity)
        k1, k2 = constants[1], constants[2]
        h = 10.0 ** -ph[k]
        first, second = k1 / h, k1 * k2 / (h * h)
        factor = 1.0 + first + second
        dic[k] = dissolved_co2_mmol_per_l[k] * factor
        slope[k] = math.log(10.0) * (first + 2.0 * second) / factor
    return dic, slope


def _on_grid(grid_h: np.ndarray, times_h: np.ndarray, values: np.ndarray | None) -> np.ndarray | None:
    """Linear interpolation of a sensor's finite samples onto ``grid_h`` (held flat beyond its ends)."""
    if values is None:
        return None
    finite = np.isfinite(times_h) & np.isfinite(values)
    if finite.sum() == 0:
        return None
    return np.interp(grid_h, times_h[finite], values[finite])


def co2_from_gas_balance(times_h: np.ndarray, readings: dict[str, np.ndarray], volume_l: float, salinity: float,
                         harvest_times_h: np.ndarray | None = None,
                         uncertainty: GasBalanceUncertainty | None = None) -> GasBalance | None:  # fmt: skip
    """The gas-balance route for one unit (module doc). ``readings``: sensor → values at ``times_h`` (NaN
    where that sensor has no sample). Returns None without ``co2_gas_in``, ``co2_gas_out`` and ``air_flow``.
    ``harvest_times_h``: the steps across which the DIC inventory is not counted."""
    if volume_l <= 0:
        raise ValueError(f"volume_l must be > 0 (got {volume_l})")
    uncertainty = uncertainty or GasBalanceUncertainty()
    times_h = np.asarray(times_h, dtype=float)
    if any(name not in readings for name in GAS_SENSORS):
        return None
    times_h, readings = _time_ordered(times_h, readings)
    exhaust = readings["co2_gas_out"]
    grid_mask = np.isfinite(exhaust)
    grid = times_h[grid_mask]
    if grid.size < 2:
        return None
    outlet = exhaust[grid_mask]
    inlet = _on_grid(grid, times_h, readings["co2_gas_in"])
    flow = _on_grid(grid, times_h, readings["air_flow"])
    if inlet is None or flow is None:
        return None
    molar_flow = gas_molar_flow_mol_per_h(np.maximum(flow, 0.0))
    rate_mol_per_h = molar_flow * (inlet - outlet) * 1e-6
    step = np.diff(grid)
    taken = cumulative_trapezoid(rate_mol_per_h, grid, initial=0.0)
    gas_through = cumulative_trapezoid(molar_flow, grid, initial=0.0)
    # Running trapezoid I_j = Σ_{k<j} Δ_k (r_k + r_{k+1})/2: r_k enters with weight (Δ_{k−1} + Δ_k)/2 for
    # 0 < k < j, Δ_0/2 for k = 0 and Δ_{j−1}/2 for k = j; Var r_k = ṅ_k² (σ_in² + σ_out²) 10⁻¹².
    noise_per_mol = (SENSORS["co2_gas_in"].noise_sd ** 2 + SENSORS["co2_gas_out"].noise_sd ** 2) * 1e-12
    left = np.concatenate([[0.0], 0.5 * step])
    right = np.concatenate([0.5 * step, [0.0]])
    flow_squared = molar_flow**2
    inner = np.concatenate([[0.0], np.cumsum((left + right) ** 2 * flow_squared)[:-1]])  # Σ_{k<j}
    random_variance = noise_per_mol * (inner + left**2 * flow_squared)
    variance = (random_variance + (uncertainty.analyser_offset_sd_ppm * 1e-6 * gas_through) ** 2
                + (uncertainty.flow_relative_sd * taken) ** 2)  # fmt: skip
    stored = np.zeros(grid.size)
    ph = _on_grid(grid, times_h, readings.get("ph_tank"))
    dissolved = _on_grid(grid, times_h, readings.get("dco2_tank"))
    if ph is not None and dissolved is not None:
        temperature = _on_grid(grid, times_h, readings.get("temp_tank"))
        temperature = np.full(grid.size, 25.0) if temperature is None else temperature
        dic, slope = dissolved_inorganic_carbon(np.maximum(dissolved, 0.0) / CO2_MOLAR_MASS_G, ph, temperature,
                                                salinity)  # fmt: skip
        # σ_DIC² of one sample: DIC² [(σ_CO2/CO2)² + (∂lnDIC/∂pH σ_pH)²].
        co2_sd = SENSORS["dco2_tank"].noise_sd / np.maximum(dissolved, SENSORS["dco2_tank"].noise_sd)
        sample_variance = dic**2 * (co2_sd**2 + (slope * SENSORS["ph_tank"].noise_sd) ** 2)
        # Accuracy of a DIC level (pH and dCO2 calibration, drift, response lag), independent at the two
        # ends of each difference: they need not cancel over hours to days.
        level_variance = dic**2 * (uncertainty.dissolved_co2_relative_sd**2 + (slope * uncertainty.ph_level_sd) ** 2)
        segment_start = _segment_starts(grid, harvest_times_h)
        stored_mmol_per_l, dic_variance = dic_storage(grid, dic, sample_variance, segment_start,
                                                      uncertainty.averaging_window_h, level_variance)  # fmt: skip
        stored = volume_l * stored_mmol_per_l * 1e-3  # mol
        variance = variance + (volume_l * 1e-3) ** 2 * dic_variance
    return GasBalance(grid, taken * CO2_MOLAR_MASS_G, stored * CO2_MOLAR_MASS_G,
                      (taken - stored) * CO2_MOLAR_MASS_G, np.sqrt(variance) * CO2_MOLAR_MASS_G)


def _segment_starts(grid: np.ndarray, harvest_times_h) -> np.ndarray:
    """Index of the first sample of each sample's harvest segment (a harvest at t_h starts a segment at
    the first sample at or after it)."""
    starts = np.zeros(grid.size, dtype=np.int64)
    if harvest_times_h is None or not len(harvest_times_h):
        return starts
    crossing = np.unique(np.searchsorted(grid, np.asarray(harvest_times_h, dtype=float), side="left"))
    crossing = crossing[(crossing >= 1) & (crossing < grid.size)]
    segment = np.searchsorted(crossing, np.arange(grid.size), side="right")  # harvests at or before each k
    return np.concatenate([[0], crossing])[segment]


@njit(cache=True, error_model="numpy")
def _line_weights(times_h: np.ndarray, first: int, last: int, at_h: float) -> tuple:
    """ŷ(at) of the least-squares line through samples first..last is Σ_i (α + β t_i) y_i: returns (α, β);
    α = 1/n − β t̄, β = (at − t̄)/S_tt (β = 0 for one sample or equal times: the mean)."""
    count = last - first + 1
    mean_time = 0.0
    for i in range(first, last + 1):
        mean_time += times_h[i]
    mean_time /= count
    spread = 0.0
    for i in range(first, last + 1):
        spread += (times_h[i] - mean_time) ** 2
    slope = (at_h - mean_time) / spread if spread > 0.0 else 0.0
    return 1.0 / count - slope * mean_time, slope


@njit(cache=True, error_model="numpy")
def _misfit_variance(times_h: np.ndarray, values: np.ndarray, sample_variance: np.ndarray, first: int,
                     last: int) -> float:  # fmt: skip
    """Residual variance of the window's line beyond the samples' own noise, max(0, Σr²/(n − 2) − mean σ²):
    how far the DIC curves inside the window (0 with fewer than 4 samples)."""
    count = last - first + 1
    if count < 4:
        return 0.0
    mean_time, mean_value, noise = 0.0, 0.0, 0.0
    for i in range(first, last + 1):
        mean_time += times_h[i]
        mean_value += values[i]
        noise += sample_variance[i]
    mean_time /= count
    mean_value /= count
    spread, covariance = 0.0, 0.0
    for i in range(first, last + 1):
        spread += (times_h[i] - mean_time) ** 2
        covariance += (times_h[i] - mean_time) * (values[i] - mean_value)
    slope = covariance / spread if spread > 0.0 else 0.0
    residual = 0.0
    for i in range(first, last + 1):
        residual += (values[i] - mean_value - slope * (times_h[i] - mean_time)) ** 2
    return max(residual / (count - 2) - noise / count, 0.0)


@njit(cache=True, error_model="numpy")
def _window_changes(times_h, dic, sample_variance, segment_start, recent_first, reference_last, change, variance):
    for k in range(times_h.shape[0]):
        a, low, high = segment_start[k], recent_first[k], reference_last[k]
        alpha_recent, beta_recent = _line_weights(times_h, low, k, times_h[k])
        alpha_reference, beta_reference = _line_weights(times_h, a, high, times_h[a])
        total, spread = 0.0, 0.0
        # The union of the two windows: [a, high] and [low, k] (one range when they touch or overlap).
        split = high if high < low - 1 else k
        for part in range(2):
            begin, end = (a, split) if part == 0 else (low, k)
            if part == 1 and split == k:
                break
            for i in range(begin, end + 1):
                weight = 0.0
                if i >= low:
                    weight += alpha_recent + beta_recent * times_h[i]
                if i <= high:
                    weight -= alpha_reference + beta_reference * times_h[i]
                total += weight * dic[i]
                spread += weight * weight * sample_variance[i]
        # A line fitted to a curving window misses most at its ends: twice the misfit sd, per window.
        misfit = _misfit_variance(times_h, dic, sample_variance, low, k)
        if high != k or a != low:
            misfit += _misfit_variance(times_h, dic, sample_variance, a, high)
        change[k] = total
        variance[k] = spread + 4.0 * misfit


def dic_storage(times_h: np.ndarray, dic: np.ndarray, sample_variance: np.ndarray, segment_start: np.ndarray,
                window_h: float, level_variance: np.ndarray | None = None,
                ) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """Cumulative change of DIC (mmol/L) and its variance, harvest steps left out.

    In a segment beginning at sample a, the change at sample k is D̂_k − D̂_a: D̂_k the least-squares line
    through the segment's samples in (t_k − W, t_k] evaluated at t_k, D̂_a the line through its first
    samples in [t_a, t_a + W] (those up to k: causal) evaluated at t_a. Lines, not means, so a steady
    trend is not lagged by W/2. Both are linear in the samples, D̂_k − D̂_a = Σ_i c_i y_i, so with
    independent sample variances σ_i², Var = Σ_i c_i² σ_i² (exact where the windows overlap), plus, for a
    window where DIC curves (an equilibrating start), (2 × the residual sd beyond noise)² per window.
    ``level_variance``: the accuracy of each sample's DIC level, counted once at each end (k and a).
    Earlier segments add their final change.
    """
    steps = times_h.size
    index = np.arange(steps)
    recent_first = np.maximum(segment_start, np.searchsorted(times_h, times_h - window_h, side="right"))
    reference_last = np.minimum(np.searchsorted(times_h, times_h[segment_start] + window_h, side="right"),
                                index + 1) - 1  # fmt: skip
    within = np.empty(steps)
    within_variance = np.empty(steps)
    _window_changes(np.ascontiguousarray(times_h, dtype=float), np.ascontiguousarray(dic, dtype=float),
                    np.ascontiguousarray(sample_variance, dtype=float), segment_start.astype(np.int64),
                    recent_first.astype(np.int64), reference_last.astype(np.int64), within, within_variance)
    if level_variance is not None:
        within_variance += level_variance + level_variance[segment_start]
    # Segments that have ended: their last sample's within-segment change, carried forward.
    last_of_segment = np.flatnonzero(np.diff(segment_start))
    closed = np.zeros(steps)
    closed_variance = np.zeros(steps)
    for last in last_of_segment:
        closed[last + 1 :] += within[last]
        closed_variance[last + 1 :] += within_variance[last]
    return closed + within, closed_variance + within_variance


def _time_ordered(times_h: np.ndarray, readings: dict[str, np.ndarray]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Samples in time order, without missing times; of repeated times the last row is kept."""
    order = np.argsort(times_h, kind="stable")
    ordered = times_h[order]
    keep = np.isfinite(ordered)
    keep[:-1] &= ordered[:-1] != ordered[1:]
    order = order[keep]
    return times_h[order], {name: np.asarray(values, dtype=float)[order] for name, values in readings.items()}


def agreement(captured_biomass_g: np.ndarray, biomass_sd: np.ndarray, captured_gas_g: np.ndarray,
              gas_sd: np.ndarray) -> np.ndarray:  # fmt: skip
    """z = (CO2_gas − CO2_biomass) / √(σ_gas² + σ_biomass²): |z| < 2 means the two routes agree."""
    spread = np.sqrt(np.asarray(biomass_sd, dtype=float) ** 2 + np.asarray(gas_sd, dtype=float) ** 2)
    return (np.asarray(captured_gas_g, dtype=float) - np.asarray(captured_biomass_g, dtype=float)) / np.where(
        spread > 0, spread, np.nan)
