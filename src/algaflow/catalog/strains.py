"""Strain library: growth parameters with a source for every value (``data/strains.toml``).

The light response is stored in either of its published forms and exposed as the coefficients of
the common rational form  mu(I) / mu_max = I / (a + b I + c I^2)  used by :mod:`algaflow.model.optics`:

* Haldane:          a = K_s,             b = 1,                          c = 1 / K_i
* Bernard–Rémond:   a = mu_max / alpha,  b = 1 - 2 mu_max / (alpha I_opt), c = mu_max / (alpha I_opt^2)
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from functools import cache
from importlib import resources

_NUMERIC = (
    "mu_max_per_h", "t_min_c", "t_opt_c", "t_max_c", "ph_min", "ph_opt", "ph_max",
    "do_max_mg_per_l", "do_exponent", "nitrate_k_mg_per_l", "nitrate_yield_mg_per_g",
    "dic_k_mmol_per_l", "extinction_m2_per_g", "carbon_fraction", "photosynthetic_quotient",
    "respiration_per_h", "respiration_q10", "salinity", "od750_per_g_per_l", "od680_over_od750",
    "turbidity_ntu_per_g_per_l", "cells_per_ml_per_g_per_l",
)  # fmt: skip
_LIGHT_FIELDS = {"haldane": ("light_k_s", "light_k_i"), "bernard_remond": ("light_alpha", "light_i_opt")}
_STATUSES = {"fitted", "literature", "assumption"}


@dataclass(frozen=True, slots=True)
class Strain:
    """Parameters of one strain, in algaflow units (hours, g/L, mg/L, µmol m⁻² s⁻¹, °C)."""

    name: str
    display_name: str
    medium: str
    light_model: str
    light_a: float
    light_b: float
    light_c: float
    mu_max_per_h: float
    t_min_c: float
    t_opt_c: float
    t_max_c: float
    ph_min: float
    ph_opt: float
    ph_max: float
    do_max_mg_per_l: float
    do_exponent: float
    nitrate_k_mg_per_l: float
    nitrate_yield_mg_per_g: float
    dic_k_mmol_per_l: float
    extinction_m2_per_g: float
    carbon_fraction: float
    photosynthetic_quotient: float
    respiration_per_h: float
    respiration_q10: float
    salinity: float
    od750_per_g_per_l: float
    od680_over_od750: float
    turbidity_ntu_per_g_per_l: float
    cells_per_ml_per_g_per_l: float
    sources: dict[str, dict[str, str]] = field(default_factory=dict, compare=False, repr=False)

    def biomass_slope(self, sensor: str) -> float:
        """a in s = a X + b: a biomass sensor's reading per g/L of this strain (the catalog's slope, before any
        fitted calibration curve)."""
        slopes = {"od750": self.od750_per_g_per_l, "od680": self.od750_per_g_per_l * self.od680_over_od750,
                  "turbidity_tank": self.turbidity_ntu_per_g_per_l, "turbidity_tube": self.turbidity_ntu_per_g_per_l}
        if sensor not in slopes:
            raise ValueError(f"{sensor!r} is not a biomass sensor; use one of {', '.join(slopes)}")
        return float(slopes[sensor])

    @property
    def extinction_per_g_per_l_per_m(self) -> float:
        """Beer–Lambert coefficient k in I = I0 exp(-k X s), X in g/L, s in m: k = 1000 × (m²/g)."""
        return 1000.0 * self.extinction_m2_per_g


def _light_coefficients(model: str, mu_max: float, p: dict[str, float]) -> tuple[float, float, float]:
    if model == "haldane":
        return p["light_k_s"], 1.0, 1.0 / p["light_k_i"]
    alpha, i_opt = p["light_alpha"], p["light_i_opt"]
    return mu_max / alpha, 1.0 - 2.0 * mu_max / (alpha * i_opt), mu_max / (alpha * i_opt**2)


@cache
def _library() -> dict[str, dict]:
    text = resources.files("algaflow.catalog").joinpath("data/strains.toml").read_text(encoding="utf-8")
    return tomllib.loads(text)


def strain_names() -> list[str]:
    """Names of the shipped strains."""
    return list(_library())


def load_strain(name: str) -> Strain:
    """The strain ``name`` from the library; an unknown name raises ``KeyError`` listing the library."""
    table = _library()
    if name not in table:
        raise KeyError(f"unknown strain {name!r}; the library has: {', '.join(table)}")
    row = table[name]
    model = row["light_model"]
    if model not in _LIGHT_FIELDS:
        raise ValueError(f"strain {name!r}: light_model must be one of {sorted(_LIGHT_FIELDS)}, got {model!r}")
    values: dict[str, float] = {}
    sources: dict[str, dict[str, str]] = {}
    for key in (*_NUMERIC, *_LIGHT_FIELDS[model]):
        entry = row.get(key)
        if not isinstance(entry, dict) or "value" not in entry:
            raise ValueError(f"strain {name!r}: parameter {key!r} is missing or has no value")
        if entry.get("status") not in _STATUSES:
            raise ValueError(f"strain {name!r}: parameter {key!r} needs a status in {sorted(_STATUSES)}")
        values[key] = float(entry["value"])
        sources[key] = {k: str(v) for k, v in entry.items() if k != "value"}
    a, b, c = _light_coefficients(model, values["mu_max_per_h"], values)
    return Strain(
        name=name,
        display_name=row["display_name"],
        medium=row["medium"],
        light_model=model,
        light_a=a,
        light_b=b,
        light_c=c,
        sources=sources,
        **{key: values[key] for key in _NUMERIC},
    )
