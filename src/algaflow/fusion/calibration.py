"""Calibration curves: biomass sensors to dry weight, and pH electrodes, fitted from paired samples (their
versioned JSON files are service file management: service.calibrations; this module does no file I/O).

Biomass (OD or turbidity s against dry weight X, g/L), a polynomial of degree 1 or 2 fitted by least
squares with its parameter covariance:

    s = c0 + c1 X + c2 X² + e,   e ~ N(0, σ²):   ĉ = (AᵀA)⁻¹ Aᵀ s,   Σ_c = σ̂² (AᵀA)⁻¹,
    σ̂² = ‖s − A ĉ‖² / (n − p),   A = [1, X, X²]

Inside the growth chain c1, c2 are the measurement factor's curve and c0 the baseline's prior mean (its
variance joins the baseline prior); the uncertainty of (c1, c2) is common to every sample, so it is
propagated at the output, var ln X += φᵀ Σ_(c1,c2) φ / (X h'(X))², φ = (X, X²)
(:meth:`BiomassCalibration.log_biomass_variance`).

pH electrode (Nernst): E = E0 − S(T) (pH − 7), S(T) = S25 (T + 273.15)/298.15, E0 the isopotential
offset at pH 7. Two buffers give the line through them; three give two segments meeting at the middle
buffer (acid and alkaline slopes), as laboratory meters do. The slope is reported as a percentage of the
ideal Nernst slope 59.16 mV/pH at 25 °C; an electrode outside 90–105 % or with |E0| > 60 mV is refused.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

NERNST_SLOPE_25C_MV = 59.159  # (ln 10) R T / F at 298.15 K, mV per pH unit
SLOPE_PERCENT_RANGE = (90.0, 105.0)
OFFSET_LIMIT_MV = 60.0
BIOMASS_SENSOR_UNITS = {"od750": "AU", "od680": "AU", "turbidity_tank": "NTU", "turbidity_tube": "NTU"}
PH_SENSORS = ("ph_tank", "ph_tube")


@dataclass(frozen=True, slots=True)
class BiomassCalibration:
    """reading = c0 + c1 X + c2 X² for one sensor and strain, with the coefficients' covariance."""

    sensor: str
    strain: str
    coefficients: tuple[float, ...]  # (c0, c1[, c2])
    covariance: tuple[tuple[float, ...], ...]
    residual_sd: float
    pairs: int
    dry_weight_range: tuple[float, float]
    version: int = 0
    created: str = ""
    kind: str = field(default="biomass", init=False)

    @property
    def intercept(self) -> float:
        return self.coefficients[0]

    @property
    def slope(self) -> float:
        return self.coefficients[1]

    @property
    def curvature(self) -> float:
        return self.coefficients[2] if len(self.coefficients) > 2 else 0.0

    def reading(self, dry_weight_g_per_l: np.ndarray) -> np.ndarray:
        """Expected reading at X."""
        x = np.asarray(dry_weight_g_per_l, dtype=float)
        return self.intercept + self.slope * x + self.curvature * x**2

    def dry_weight(self, reading: np.ndarray) -> np.ndarray:
        """Invert the curve: the root X ≥ 0 of c1 X + c2 X² = reading − c0 (NaN where none is real)."""
        signal = np.asarray(reading, dtype=float) - self.intercept
        a, c = self.slope, self.curvature
        with np.errstate(invalid="ignore"):
            return 2.0 * signal / (a + np.sqrt(a * a + 4.0 * c * signal))

    def biomass_variance(self, biomass_g_per_l: np.ndarray) -> np.ndarray:
        """Variance of X (g/L)² from the uncertainty of (c1, c2), common to every sample:
        φᵀ Σ φ / h'(X)², φ = (X, X²), h'(X) = c1 + 2 c2 X."""
        x = np.asarray(biomass_g_per_l, dtype=float)
        covariance = np.asarray(self.covariance)[1:, 1:]
        basis = np.stack([x**j for j in range(1, len(self.coefficients))], axis=-1)
        curve = np.einsum("...i,ij,...j->...", basis, covariance, basis)
        return curve / (self.slope + 2.0 * self.curvature * x) ** 2

    def log_biomass_variance(self, biomass_g_per_l: np.ndarray) -> np.ndarray:
        """Variance of ln X from the same: φᵀ Σ φ / (X h'(X))²."""
        x = np.asarray(biomass_g_per_l, dtype=float)
        return self.biomass_variance(x) / x**2


def fit_biomass_calibration(dry_weight_g_per_l: np.ndarray, reading: np.ndarray, sensor: str, strain: str,
                            degree: int = 1) -> BiomassCalibration:  # fmt: skip
    """Least-squares curve of ``degree`` 1 or 2 through paired (dry weight, reading) samples (module doc)."""
    if sensor not in BIOMASS_SENSOR_UNITS:
        raise ValueError(f"{sensor!r} is not a biomass sensor; calibrate one of {', '.join(BIOMASS_SENSOR_UNITS)}")
    if degree not in (1, 2):
        raise ValueError(f"degree must be 1 or 2 (got {degree})")
    x = np.asarray(dry_weight_g_per_l, dtype=float)
    y = np.asarray(reading, dtype=float)
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError("dry weights and readings must be two columns of the same length")
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        raise ValueError("calibration pairs contain NaN or infinite values")
    if (x < 0).any():
        raise ValueError("dry weights must be ≥ 0 g/L")
    parameters = degree + 1
    if np.unique(x).size < parameters + 1:
        raise ValueError(f"a degree-{degree} curve with an uncertainty needs at least {parameters + 1} distinct "
                         f"dry weights (got {np.unique(x).size})")  # fmt: skip
    design = np.stack([x**j for j in range(parameters)], axis=1)
    coefficients, _, _, _ = np.linalg.lstsq(design, y, rcond=None)
    residuals = y - design @ coefficients
    variance = float(residuals @ residuals) / (x.size - parameters)
    covariance = variance * np.linalg.inv(design.T @ design)
    if coefficients[1] <= 0 or (degree == 2 and coefficients[1] + 2 * coefficients[2] * x.max() <= 0):
        raise ValueError(f"the fitted {sensor} curve does not rise with dry weight over the samples; check the pairs")
    return BiomassCalibration(sensor, strain, tuple(map(float, coefficients)),
                              tuple(tuple(map(float, row)) for row in covariance), float(np.sqrt(variance)), x.size,
                              (float(x.min()), float(x.max())))  # fmt: skip


@dataclass(frozen=True, slots=True)
class PhCalibration:
    """pH electrode: offset E0 (mV at pH 7, temperature-independent isopotential point) and the buffers'
    potentials relative to it referred to 25 °C, D_k = (E_k − E0) 298.15/(T_k + 273.15), sorted by pH."""

    sensor: str
    buffer_ph: tuple[float, ...]
    deviation_mv_25c: tuple[float, ...]
    offset_mv: float
    version: int = 0
    created: str = ""
    kind: str = field(default="ph", init=False)

    def slopes_mv_per_ph(self) -> np.ndarray:
        """Segment slopes S25 (mV per pH, positive for a normal electrode), acid first."""
        return -np.diff(self.deviation_mv_25c) / np.diff(self.buffer_ph)

    def slope_percent(self) -> np.ndarray:
        return 100.0 * self.slopes_mv_per_ph() / NERNST_SLOPE_25C_MV

    def ph(self, millivolts: np.ndarray, temperature_c: np.ndarray | float = 25.0) -> np.ndarray:
        """pH from the electrode potential at T: D = (E − E0) 298.15/(T + 273.15), then the segment line
        pH = pH_k + (D_k − D)/S_k (segments meet at the middle buffer; the end segments extend)."""
        temperature = np.asarray(temperature_c, dtype=float)
        deviation = (np.asarray(millivolts, dtype=float) - self.offset_mv) * 298.15 / (temperature + 273.15)
        ph_points = np.asarray(self.buffer_ph)
        points = np.asarray(self.deviation_mv_25c)
        slopes = self.slopes_mv_per_ph()
        # D falls as pH rises: segment k covers D between points k and k + 1.
        segment = np.clip(np.searchsorted(-points, -deviation) - 1, 0, slopes.size - 1)
        return ph_points[segment] + (points[segment] - deviation) / slopes[segment]


def fit_ph_calibration(buffer_ph: np.ndarray, millivolts: np.ndarray, temperature_c: np.ndarray,
                       sensor: str = "ph_tank") -> PhCalibration:  # fmt: skip
    """Two- or three-point calibration from buffers (pH at their temperature) and the potentials read in them.

    E0 is the potential at pH 7 on the segment through the buffers that bracket 7 (or the nearest)."""
    if sensor not in PH_SENSORS:
        raise ValueError(f"{sensor!r} is not a pH sensor; calibrate one of {', '.join(PH_SENSORS)}")
    ph = np.asarray(buffer_ph, dtype=float)
    mv = np.asarray(millivolts, dtype=float)
    if ph.size not in (2, 3) or mv.shape != ph.shape:
        raise ValueError(f"pH calibration takes 2 or 3 buffers with one potential each (got {ph.size})")
    temperature = np.broadcast_to(np.asarray(temperature_c, dtype=float), ph.shape)
    if not (np.isfinite(ph).all() and np.isfinite(mv).all() and np.isfinite(temperature).all()):
        raise ValueError("pH calibration points contain NaN or infinite values")
    if ((ph < 0) | (ph > 14)).any():
        raise ValueError(f"buffer pH must lie in 0–14 (got {ph.tolist()})")
    order = np.argsort(ph)
    ph, mv, temperature = ph[order], mv[order], temperature[order]
    if np.any(np.diff(ph) < 0.5):
        raise ValueError("buffers must differ by at least 0.5 pH")
    k = int(np.clip(np.searchsorted(ph, 7.0) - 1, 0, ph.size - 2))
    offset = mv[k] + (mv[k + 1] - mv[k]) * (7.0 - ph[k]) / (ph[k + 1] - ph[k])
    deviation = (mv - offset) * 298.15 / (temperature + 273.15)
    calibration = PhCalibration(sensor, tuple(map(float, ph)), tuple(map(float, deviation)), float(offset))
    low, high = SLOPE_PERCENT_RANGE
    slopes = calibration.slope_percent()
    if np.any((slopes < low) | (slopes > high)):
        raise ValueError(f"electrode slope {', '.join(f'{s:.1f}' for s in slopes)} % of Nernstian is outside "
                         f"{low:.0f}–{high:.0f} %: clean or replace the electrode, or check the buffers")  # fmt: skip
    if abs(calibration.offset_mv) > OFFSET_LIMIT_MV:
        raise ValueError(f"electrode offset {calibration.offset_mv:.1f} mV at pH 7 is beyond "
                         f"±{OFFSET_LIMIT_MV:.0f} mV")  # fmt: skip
    return calibration


Calibration = BiomassCalibration | PhCalibration
