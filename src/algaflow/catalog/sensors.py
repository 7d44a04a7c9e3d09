"""The sensor catalog (DESIGN.md §4) as frozen descriptions loaded from ``data/sensors.toml``.

Unknown names are rejected at the edge with the list of known ones (:func:`sensor`).
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from importlib import resources
from types import MappingProxyType


@dataclass(frozen=True, slots=True)
class SensorSpec:
    """One catalog sensor: what it measures, where, and how well.

    ``noise_sd`` is absolute in ``unit`` unless ``relative_noise`` (then a fraction of the reading).
    ``offset_sd``: sd of one probe's zero offset left after calibration (a unit's constant bias), in ``unit``;
    half the noise sd unless the catalog says otherwise (0 for relative-noise sensors).
    """

    name: str
    unit: str
    location: str
    description: str
    range: tuple[float, float]
    noise_sd: float
    resolution: float
    period_s: float
    relative_noise: bool = False
    offset_sd: float = 0.0


def _load() -> MappingProxyType[str, SensorSpec]:
    text = resources.files("algaflow.catalog").joinpath("data/sensors.toml").read_text(encoding="utf-8")
    table = tomllib.loads(text)
    specs = {}
    for name, row in table.items():
        specs[name] = SensorSpec(
            name=name,
            unit=row["unit"],
            location=row["location"],
            description=row["description"],
            range=(float(row["range"][0]), float(row["range"][1])),
            noise_sd=float(row["noise_sd"]),
            resolution=float(row["resolution"]),
            period_s=float(row["period_s"]),
            relative_noise=bool(row.get("relative_noise", False)),
            offset_sd=float(row.get("offset_sd", 0.0 if row.get("relative_noise") else 0.5 * row["noise_sd"])),
        )
    return MappingProxyType(specs)


SENSORS: MappingProxyType[str, SensorSpec] = _load()


def sensor_names() -> list[str]:
    """Canonical sensor names, in catalog order."""
    return list(SENSORS)


def sensor(name: str) -> SensorSpec:
    """The catalog entry for ``name``; an unknown name raises ``KeyError`` listing the catalog."""
    try:
        return SENSORS[name]
    except KeyError:
        raise KeyError(f"unknown sensor {name!r}; the catalog has: {', '.join(SENSORS)}") from None
