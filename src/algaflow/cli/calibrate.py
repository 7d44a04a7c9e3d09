"""``algaflow calibrate``: paired samples in (fits: fusion.calibration), a versioned calibration file out
(service.calibrations)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from algaflow.catalog import load_strain
from algaflow.fusion.calibration import (
    BIOMASS_SENSOR_UNITS,
    PH_SENSORS,
    fit_biomass_calibration,
    fit_ph_calibration,
)
from algaflow.service.calibrations import save_calibration

BIOMASS_COLUMNS = ("dry_weight_g_per_l", "reading")
PH_COLUMNS = ("buffer_ph", "millivolts", "temperature_c")


def _columns(path: Path, columns: tuple[str, ...]) -> pd.DataFrame:
    path = Path(path)
    if not path.exists():
        raise ValueError(f"pairs file {path} does not exist")
    try:
        table = pd.read_csv(path)
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as error:
        raise ValueError(f"pairs file {path}: {error}") from None
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise ValueError(f"pairs file {path} lacks column(s) {', '.join(missing)}; it needs {', '.join(columns)}")
    values = table[list(columns)].apply(pd.to_numeric, errors="coerce")
    bad = values.isna().any(axis=1)
    if bad.any():
        raise ValueError(f"pairs file {path}: rows {', '.join(str(i + 2) for i in np.flatnonzero(bad)[:5])} "
                         f"are not numbers")  # fmt: skip
    return values


def calibrate_file(pairs: Path, sensor: str, store: Path, strain_name: str = "chlorella_vulgaris",
                   degree: int = 1) -> tuple[Path, list[str]]:  # fmt: skip
    """Fit ``sensor``'s calibration from ``pairs``, store it, and return its path and a summary."""
    if sensor in BIOMASS_SENSOR_UNITS:
        strain = load_strain(strain_name)
        table = _columns(pairs, BIOMASS_COLUMNS)
        curve = fit_biomass_calibration(table["dry_weight_g_per_l"].to_numpy(), table["reading"].to_numpy(), sensor,
                                        strain.name, degree)  # fmt: skip
        sd = np.sqrt(np.diag(curve.covariance))
        terms = " + ".join(f"({c:.5g} ± {s:.2g}) X{'' if j == 1 else '²'}" if j else f"({c:.5g} ± {s:.2g})"
                           for j, (c, s) in enumerate(zip(curve.coefficients, sd, strict=True)))  # fmt: skip
        unit = BIOMASS_SENSOR_UNITS[sensor]
        lines = [f"{sensor} [{unit}] = {terms}   (X dry weight, g/L; {strain.name})",
                 f"{curve.pairs} pairs over X {curve.dry_weight_range[0]:.3g}–{curve.dry_weight_range[1]:.3g} g/L, "
                 f"residual sd {curve.residual_sd:.3g} {unit}"]  # fmt: skip
        return save_calibration(curve, store), lines
    if sensor in PH_SENSORS:
        table = _columns(pairs, PH_COLUMNS)
        electrode = fit_ph_calibration(table["buffer_ph"].to_numpy(), table["millivolts"].to_numpy(),
                                       table["temperature_c"].to_numpy(), sensor)  # fmt: skip
        slopes = ", ".join(f"{s:.1f}" for s in electrode.slope_percent())
        lines = [f"{sensor}: {len(electrode.buffer_ph)}-point calibration at pH "
                 f"{', '.join(f'{p:g}' for p in electrode.buffer_ph)}",
                 f"slope {slopes} % of Nernstian, offset {electrode.offset_mv:+.1f} mV at pH 7"]  # fmt: skip
        return save_calibration(electrode, store), lines
    raise ValueError(f"cannot calibrate {sensor!r}; calibrate one of {', '.join((*BIOMASS_SENSOR_UNITS, *PH_SENSORS))}")
