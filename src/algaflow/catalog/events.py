"""The event kinds (``data/events.toml``): what may happen to a culture or its hardware, and each kind's
parameters with unit and range, as frozen descriptions. Every way in (frames over HTTP and MQTT, the events
endpoint, the dashboard's form) checks an event here and nowhere else (:func:`check_params`).

A parameter is flat (a number, an integer, a text or a catalog sensor name; never a list or an object), so
a stored event cannot nest; a number is finite and inside its closed range (open at an end named in
``open``); a text is at most ``MAX_TEXT`` characters. Every kind also takes an optional ``text`` (an
operator's remark). An unknown parameter is refused with the kind's list.
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass
from importlib import resources
from types import MappingProxyType
from typing import Any

from algaflow.catalog.sensors import SENSORS

MAX_TEXT = 2000  # characters in a text parameter
NO_NUL = r"^[^\u0000]*$"  # texts: any character but NUL, which a database text cannot hold
PARAM_TYPES = ("number", "integer", "text", "sensor")


@dataclass(frozen=True, slots=True)
class EventParam:
    """One parameter of an event kind (module doc)."""

    name: str
    type: str
    unit: str
    description: str
    range: tuple[float, float] | None = None
    open_low: bool = False
    open_high: bool = False
    required: bool = False

    def check(self, value: Any) -> str | None:
        """None when ``value`` is acceptable, else what is wrong with it (one line)."""
        if self.type in ("number", "integer"):
            is_int = isinstance(value, int) and not isinstance(value, bool)
            integral = is_int or (isinstance(value, float) and value.is_integer())  # JSON's 473.0 is an integer
            if self.type == "integer" and not integral:
                return f"must be an integer (got {_shown(value)})"
            if not (is_int or isinstance(value, float)) or not math.isfinite(value):
                return f"must be a finite number (got {_shown(value)})"
            if self.range is not None:
                low, high = self.range
                below = value <= low if self.open_low else value < low
                above = value >= high if self.open_high else value > high
                if below or above:
                    unit = "" if self.unit in ("", "1") else f" {self.unit}"
                    return f"must lie in {self.interval()}{unit} (got {value!r})"
            return None
        if not isinstance(value, str):
            return f"must be a text (got {_shown(value)})"
        if self.type == "sensor" and value not in SENSORS:
            return f"must name a catalog sensor (got {value[:64]!r}); the catalog has {', '.join(SENSORS)}"
        if len(value) > MAX_TEXT:
            return f"is {len(value)} characters long; at most {MAX_TEXT}"
        if "\x00" in value:
            return "must not hold a NUL character"
        return None

    def json_schema(self) -> dict[str, Any]:
        """This parameter as JSON Schema (the same rule as :meth:`check`)."""
        if self.type == "sensor":
            return {"type": "string", "enum": list(SENSORS), "description": self.description}
        if self.type == "text":
            return {"type": "string", "maxLength": MAX_TEXT, "pattern": NO_NUL, "description": self.description}
        schema: dict[str, Any] = {"type": self.type, "description": f"{self.description} ({self.unit})"}
        if self.range is not None:
            low, high = self.range
            cast = int if self.type == "integer" else float
            schema["exclusiveMinimum" if self.open_low else "minimum"] = cast(low)
            schema["exclusiveMaximum" if self.open_high else "maximum"] = cast(min(high, 2**63 - 1))
        return schema

    def interval(self) -> str:
        low, high = self.range or (-math.inf, math.inf)
        return f"{'(' if self.open_low else '['}{low:g}, {high:g}{')' if self.open_high else ']'}"


@dataclass(frozen=True, slots=True)
class EventKind:
    """One event kind and its parameters."""

    name: str
    description: str
    params: MappingProxyType[str, EventParam]
    transient_h: float = 0.0  # after it, readings are mid-change (the tube drains and refills): no verdict


TEXT_PARAM = EventParam("text", "text", "", "an operator's remark")


def _shown(value: Any) -> str:
    return "a " + type(value).__name__ if isinstance(value, list | dict) else repr(value)[:40]


def _param(name: str, row: dict) -> EventParam:
    if row["type"] not in PARAM_TYPES:
        raise ValueError(f"events.toml: parameter {name}: type {row['type']!r} is not one of {PARAM_TYPES}")
    bounds = row.get("range")
    if "range_of_sensor" in row:
        bounds = SENSORS[row["range_of_sensor"]].range
    opened = set(row.get("open", ()))
    return EventParam(name=name, type=row["type"], unit=row.get("unit", ""), description=row["description"],
                      range=None if bounds is None else (float(bounds[0]), float(bounds[1])),
                      open_low="low" in opened, open_high="high" in opened,
                      required=bool(row.get("required", False)))  # fmt: skip


def _load() -> MappingProxyType[str, EventKind]:
    text = resources.files("algaflow.catalog").joinpath("data/events.toml").read_text(encoding="utf-8")
    kinds = {}
    for name, row in tomllib.loads(text).items():
        params = {key: _param(f"{name}.{key}", spec) for key, spec in row.get("params", {}).items()}
        params.setdefault("text", TEXT_PARAM)
        kinds[name] = EventKind(name, row["description"], MappingProxyType(params), float(row.get("transient_h", 0.0)))
    return MappingProxyType(kinds)


EVENTS: MappingProxyType[str, EventKind] = _load()
EVENT_KINDS: tuple[str, ...] = tuple(EVENTS)


class EventParamsError(ValueError):
    """An event's parameters are not what its kind takes; ``field`` names the one at fault (``params.x``)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def events_json_schema() -> dict[str, Any]:
    """An event (kind, optional time, params) as JSON Schema: one branch per kind of the table, so the OpenAPI
    document says exactly what :func:`check_params` accepts (times: module catalog.frames)."""
    branches = []
    for kind in EVENTS.values():
        params = {"type": "object", "properties": {name: p.json_schema() for name, p in kind.params.items()},
                  "additionalProperties": False}  # fmt: skip
        required = [name for name, p in kind.params.items() if p.required]
        if required:
            params["required"] = required
        branch = {"type": "object", "title": kind.name, "description": kind.description,
                  "properties": {"kind": {"type": "string", "enum": [kind.name]},
                                 "time": {"anyOf": [{"type": "string", "format": "date-time"}, {"type": "null"}],
                                          "description": "when it happened (default: the frame's time)"},
                                 "params": params},
                  "required": ["kind", "params"] if required else ["kind"], "additionalProperties": False}  # fmt: skip
        branches.append(branch)
    return {"oneOf": branches, "title": "FrameEvent"}


def check_params(kind: str, params: Any) -> dict[str, Any]:
    """``params`` if they are what ``kind`` takes (module doc), else :class:`EventParamsError` naming the field.
    An unknown kind is refused too (field ``kind``)."""
    spec = EVENTS.get(kind) if isinstance(kind, str) else None
    if spec is None:
        raise EventParamsError("kind", f"unknown event kind {str(kind)[:64]!r}; known kinds: {', '.join(EVENTS)}")
    if not isinstance(params, dict):
        raise EventParamsError("params", f"must be an object of parameters (got {_shown(params)})")
    unknown = sorted(str(key)[:64] for key in params if key not in spec.params)
    if unknown:
        raise EventParamsError(f"params.{unknown[0]}", f"a {kind} takes no parameter {unknown[0]!r}; it takes "
                                                      f"{', '.join(spec.params)}")  # fmt: skip
    for name, param in spec.params.items():
        if name not in params:
            if param.required:
                raise EventParamsError(f"params.{name}", f"a {kind} needs params.{name}, {param.description} "
                                                         f"({param.unit or 'text'})")  # fmt: skip
            continue
        problem = param.check(params[name])
        if problem is not None:
            raise EventParamsError(f"params.{name}", f"{name} ({param.description}) {problem}")
    return params


__all__ = [
    "EVENTS",
    "EVENT_KINDS",
    "MAX_TEXT",
    "NO_NUL",
    "EventKind",
    "EventParam",
    "EventParamsError",
    "check_params",
    "events_json_schema",
]
