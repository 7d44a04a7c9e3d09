"""Scenarios: a TOML file describing strain, reactor, site, light, schedule, rules, sensors and faults.

Validated with pydantic before anything runs; every problem is reported as one line naming the field
and what is allowed (:class:`ScenarioError`), never as a traceback.
"""

from __future__ import annotations

import tomllib
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from algaflow.catalog import SENSORS, Strain, load_strain, strain_names

PositiveFloat = Annotated[float, Field(gt=0)]
NonNegativeFloat = Annotated[float, Field(ge=0)]
Fraction = Annotated[float, Field(ge=0, le=1)]


class ScenarioError(ValueError):
    """A scenario that cannot run; the message names the field and what is allowed."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ReactorSection(_Section):
    geometry: Literal["tube", "flat_panel"] = "tube"
    light_path_m: PositiveFloat = Field(0.05, description="tube inner diameter or panel depth, m")
    volume_tank_l: PositiveFloat = 20.0
    volume_lit_l: PositiveFloat = 60.0
    water_flow_l_per_min: PositiveFloat = 20.0
    air_flow_l_per_min: NonNegativeFloat = 5.0
    air_flow_ref_l_per_min: PositiveFloat = 5.0
    kla_tank_per_h: NonNegativeFloat = 25.0
    kla_lit_per_h: NonNegativeFloat = 0.3
    co2_gas_ppm: NonNegativeFloat = 20000.0
    o2_gas_fraction: Fraction = 0.20946
    degas_flow_factor: Annotated[float, Field(ge=1)] = 3.0


class MediumSection(_Section):
    nitrate_mg_per_l: NonNegativeFloat = 1000.0
    alkalinity_mmol_per_l: PositiveFloat = 10.0
    dic_mmol_per_l: PositiveFloat = 10.0
    salinity: Annotated[float, Field(ge=0, le=40)] | None = None


class InitialSection(_Section):
    biomass_g_per_l: PositiveFloat = 0.2
    temperature_c: Annotated[float, Field(ge=-5, le=60)] = 25.0


class TemperatureSection(_Section):
    setpoint_c: Annotated[float, Field(ge=0, le=50)] = 28.0
    control_time_constant_h: NonNegativeFloat = 0.25
    ambient_mean_c: Annotated[float, Field(ge=-40, le=60)] = 22.0
    ambient_amplitude_c: NonNegativeFloat = 3.0
    ambient_peak_hour: Annotated[float, Field(ge=0, lt=24)] = 15.0
    ambient_time_constant_h: PositiveFloat = 4.0
    light_heating_c_per_h_per_par: NonNegativeFloat = 0.0005


class LightSection(_Section):
    source: Literal["lamp", "sun"] = "lamp"
    par_umol: PositiveFloat = 800.0
    photoperiod_h: Annotated[float, Field(gt=0, le=24)] = 16.0
    on_hour: Annotated[float, Field(ge=0, lt=24)] = 6.0
    led_percent: Annotated[float, Field(ge=0, le=100)] = 100.0
    latitude: Annotated[float, Field(ge=-90, le=90)] = 36.8
    longitude: Annotated[float, Field(ge=-180, le=180)] = -2.4
    altitude_m: float = 0.0
    transmission: Fraction = 0.8


class HarvestSection(_Section):
    enabled: bool = True
    growth_threshold_per_day: NonNegativeFloat = 0.1
    fraction: Annotated[float, Field(gt=0, lt=1)] = 0.7
    min_biomass_g_per_l: NonNegativeFloat = 0.5


class AlarmSection(_Section):
    enabled: bool = True
    do_high_mg_per_l: PositiveFloat = 22.0
    do_low_mg_per_l: PositiveFloat = 14.0

    @model_validator(mode="after")
    def _hysteresis(self) -> AlarmSection:
        if self.do_low_mg_per_l >= self.do_high_mg_per_l:
            raise ValueError("do_low_mg_per_l must be below do_high_mg_per_l")
        return self


class EventSpec(_Section):
    time_h: NonNegativeFloat
    kind: Literal["harvest", "degas_on", "degas_off", "dose_nitrate", "set_led", "set_air_flow",
                  "set_temperature", "set_co2"]  # fmt: skip
    value: float = 0.0


class FaultSpec(_Section):
    sensor: str
    kind: Literal["drift", "bias", "stuck", "dropout", "spikes", "offline"]
    start_h: NonNegativeFloat = 0.0
    end_h: NonNegativeFloat = float("inf")
    magnitude: float = 0.0
    units: list[int] | None = None

    @field_validator("sensor")
    @classmethod
    def _known_sensor(cls, name: str) -> str:
        if name not in SENSORS:
            raise ValueError(f"unknown sensor {name!r}; the catalog has: {', '.join(SENSORS)}")
        return name


class SensorsSection(_Section):
    include: list[str] = Field(default_factory=lambda: list(SENSORS))
    period_s: dict[str, PositiveFloat] = Field(default_factory=dict)
    dropout_probability: Fraction = 0.002
    spike_probability: Fraction = 0.001
    noise_student_t_dof: Annotated[float, Field(gt=2)] | None = Field(
        None, description="heavy-tailed noise: Student-t with this many degrees of freedom, scaled to noise_sd")
    drift_per_day: dict[str, float] = Field(default_factory=dict)
    dry_weight_every_h: PositiveFloat = 24.0
    dry_weight_entry_delay_h: NonNegativeFloat = 4.0

    @field_validator("include")
    @classmethod
    def _known_sensors(cls, names: list[str]) -> list[str]:
        unknown = [n for n in names if n not in SENSORS]
        if unknown:
            raise ValueError(f"unknown sensor {unknown[0]!r}; the catalog has: {', '.join(SENSORS)}")
        return names

    @field_validator("period_s", "drift_per_day")
    @classmethod
    def _known_keys(cls, table: dict[str, float]) -> dict[str, float]:
        for name in table:
            if name not in SENSORS:
                raise ValueError(f"unknown sensor {name!r}; the catalog has: {', '.join(SENSORS)}")
        return table


class VariationSection(_Section):
    """Unit-to-unit spread in a fleet (coefficients of variation, and a spread of setpoints in °C)."""

    initial_biomass_cv: NonNegativeFloat = 0.1
    par_cv: NonNegativeFloat = 0.05
    setpoint_sd_c: NonNegativeFloat = 0.5


class Scenario(_Section):
    name: str = "scenario"
    strain: str = "chlorella_vulgaris"
    strain_overrides: dict[str, float] = Field(default_factory=dict)
    days: PositiveFloat = 30.0
    units: Annotated[int, Field(ge=1)] = 4
    seed: int = 0
    start: datetime = datetime(2026, 6, 1, tzinfo=UTC)
    truth_every_min: PositiveFloat = 10.0
    reactor: ReactorSection = ReactorSection()
    medium: MediumSection = MediumSection()
    initial: InitialSection = InitialSection()
    temperature: TemperatureSection = TemperatureSection()
    light: LightSection = LightSection()
    harvest: HarvestSection = HarvestSection()
    alarms: AlarmSection = AlarmSection()
    events: list[EventSpec] = Field(default_factory=list)
    faults: list[FaultSpec] = Field(default_factory=list)
    sensors: SensorsSection = SensorsSection()
    variation: VariationSection = VariationSection()

    @field_validator("strain")
    @classmethod
    def _known_strain(cls, name: str) -> str:
        if name not in strain_names():
            raise ValueError(f"unknown strain {name!r}; the library has: {', '.join(strain_names())}")
        return name

    @field_validator("start")
    @classmethod
    def _utc(cls, start: datetime) -> datetime:
        if start.tzinfo is None:
            raise ValueError("start must carry a timezone, e.g. 2026-06-01T00:00:00Z")
        return start.astimezone(UTC)

    @model_validator(mode="after")
    def _strain_is_consistent(self) -> Scenario:
        strain = self.resolved_strain()
        for low, mid, high, what in (
            ("t_min_c", "t_opt_c", "t_max_c", "temperatures"),
            ("ph_min", "ph_opt", "ph_max", "pH"),
        ):
            a, b, c = getattr(strain, low), getattr(strain, mid), getattr(strain, high)
            if not a < b < c:
                raise ValueError(
                    f"strain_overrides: cardinal {what} need {low} < {mid} < {high} (got {a}, {b}, {c})"
                )
        return self

    def resolved_strain(self) -> Strain:
        """The library strain with this scenario's overrides applied."""
        strain = load_strain(self.strain)
        if not self.strain_overrides:
            return strain
        known = set(Strain.__dataclass_fields__) - {"name", "display_name", "medium", "light_model", "sources"}
        for key in self.strain_overrides:
            if key not in known:
                raise ValueError(f"strain_overrides: unknown parameter {key!r}; allowed: {', '.join(sorted(known))}")
        return replace(strain, **self.strain_overrides)

    @property
    def salinity(self) -> float:
        return self.resolved_strain().salinity if self.medium.salinity is None else self.medium.salinity


def _format_error(error: ValidationError, source: str) -> str:
    lines = []
    for item in error.errors():
        where = ".".join(str(part) for part in item["loc"]) or "(top level)"
        message = item["msg"].removeprefix("Value error, ")
        got = item.get("input")
        shown = "" if isinstance(got, dict | list) or got is None else f" (got {got!r})"
        lines.append(f"{source}: {where}: {message}{shown}")
    return "\n".join(lines)


def parse_scenario(table: dict, source: str = "scenario") -> Scenario:
    """Validate a scenario table; raises :class:`ScenarioError` with one line per problem."""
    try:
        return Scenario.model_validate(table)
    except ValidationError as error:
        raise ScenarioError(_format_error(error, source)) from None


def load_scenario(path: str | Path, **overrides) -> Scenario:
    """Read and validate a scenario TOML file; keyword overrides (days, units, seed, strain) win."""
    path = Path(path)
    if not path.is_file():
        raise ScenarioError(f"{path}: no such scenario file")
    try:
        table = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as error:
        raise ScenarioError(f"{path}: not valid TOML: {error}") from None
    table.update({k: v for k, v in overrides.items() if v is not None})
    return parse_scenario(table, str(path))
