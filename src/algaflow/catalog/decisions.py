"""The decision kinds (``data/decisions.toml``) as frozen descriptions: which condition each opens or closes,
the title an operator reads, its severity and the action it asks for; and the sensor faults in plain words.

Every view of decisions (the fleet view, the unit page, the Alarms page, the CLI) names and ranks them from
here; the live pipeline (algaflow.control.decisions) takes only these kinds.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from importlib import resources
from types import MappingProxyType

SEVERITIES = ("info", "warning", "critical")  # in rising order


@dataclass(frozen=True, slots=True)
class DecisionKind:
    """One decision kind: it ``opens`` or closes ``condition`` (one per sensor where ``per_sensor``)."""

    kind: str
    condition: str
    opens: bool
    title: str
    severity: str
    action: str
    per_sensor: bool = False


def _load() -> tuple[MappingProxyType[str, DecisionKind], MappingProxyType[str, str]]:
    text = resources.files("algaflow.catalog").joinpath("data/decisions.toml").read_text(encoding="utf-8")
    kinds, faults = {}, {}
    for kind, row in tomllib.loads(text).items():
        if row["severity"] not in SEVERITIES:
            raise ValueError(f"decisions.toml: {kind} has severity {row['severity']!r}; use one of {SEVERITIES}")
        kinds[kind] = DecisionKind(kind, row["condition"], bool(row["opens"]), row["title"], row["severity"],
                                   row["action"], bool(row.get("per_sensor", False)))  # fmt: skip
        faults |= row.get("faults", {})
    return MappingProxyType(kinds), MappingProxyType(faults)


DECISION_KINDS, SENSOR_FAULTS = _load()
CONDITIONS = tuple(dict.fromkeys(kind.condition for kind in DECISION_KINDS.values()))


def pair(condition: str) -> tuple[str, str]:
    """The (opening, closing) decision kinds of ``condition``."""
    kinds = [k for k in DECISION_KINDS.values() if k.condition == condition]
    opening = [k.kind for k in kinds if k.opens]
    closing = [k.kind for k in kinds if not k.opens]
    if len(opening) != 1 or len(closing) != 1:
        raise KeyError(f"unknown condition {condition!r}; the catalog has {', '.join(CONDITIONS)}")
    return opening[0], closing[0]


def condition_key(kind: str, params: dict) -> str | None:
    """The condition a decision opens or closes, per sensor where its kind is (``"sensor od750"``); None for
    a kind the catalog does not have."""
    entry = DECISION_KINDS.get(kind)
    if entry is None:
        return None
    return f"{entry.condition} {params.get('sensor', '')}".rstrip() if entry.per_sensor else entry.condition


def fault_text(fault: str) -> str:
    """A sensor fault in plain words (the fault's own name where the catalog has none)."""
    return SENSOR_FAULTS.get(fault, fault)
