"""The sensor catalog (DESIGN.md §4) as frozen descriptions loaded from ``data/sensors.toml``.

Unknown names are rejected at the edge with the list of known ones (:func:`sensor`). Each sensor's
``roles`` say what the software uses it for (:data:`ROLES`); :func:`sensors_with_role` lists a role's
sensors, preferred first, and is the one place the fusion layers learn which sensors they read.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from importlib import resources
from types import MappingProxyType

# what a sensor is used for (data/sensors.toml explains each); a sensor has one or more
ROLES = ("biomass", "gas", "storage", "condition", "lab", "monitor", "actuator")


@dataclass(frozen=True, slots=True)
class SensorSpec:
    """One catalog sensor: what it measures, where, and how well.

    ``noise_sd`` is absolute in ``unit`` unless ``relative_noise`` (then a fraction of the reading).
    ``offset_sd``: sd of one probe's zero offset left after calibration (a unit's constant bias), in ``unit``;
    half the noise sd unless the catalog says otherwise (0 for relative-noise sensors).
    ``roles``: what the software uses it for (of :data:`ROLES`); ``preference``: its rank among the sensors
    that stand in for one another in a role (1 the first choice); ``condition``: for a "condition" sensor,
    the reactor model's growth condition it reads (fusion.expected_rate), else None.
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
    roles: tuple[str, ...] = ()
    preference: int = 1
    condition: str | None = None


def _load() -> MappingProxyType[str, SensorSpec]:
    text = resources.files("algaflow.catalog").joinpath("data/sensors.toml").read_text(encoding="utf-8")
    table = tomllib.loads(text)
    specs = {}
    for name, row in table.items():
        roles = tuple(row["roles"])
        if not roles or set(roles) - set(ROLES):
            raise ValueError(f"sensors.toml: {name} has roles {list(roles)}; give one or more of {', '.join(ROLES)}")
        if ("condition" in roles) != ("condition" in row):
            raise ValueError(f"sensors.toml: {name}: a sensor has a `condition` if and only if its roles include it")
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
            roles=roles,
            preference=int(row.get("preference", 1)),
            condition=row.get("condition"),
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


def sensors_with_role(role: str) -> tuple[str, ...]:
    """The catalog sensors that have ``role``, preferred first: by ``preference``, then in catalog order.
    An unknown role raises ``KeyError`` listing :data:`ROLES`."""
    if role not in ROLES:
        raise KeyError(f"unknown sensor role {role!r}; the catalog has: {', '.join(ROLES)}")
    order = {name: k for k, name in enumerate(SENSORS)}
    having = [spec for spec in SENSORS.values() if role in spec.roles]
    return tuple(spec.name for spec in sorted(having, key=lambda spec: (spec.preference, order[spec.name])))
