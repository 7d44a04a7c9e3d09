"""Configuration: one TOML file, overridden by environment variables, validated by pydantic.

    [store]    url = "sqlite:///algaflow-data/algaflow.db"        (or postgresql://...)
    [http]     host, port, tls_certfile, tls_keyfile
    [mqtt]     mode = "embedded" | "external" | "off", host, port, username, password, shared_group,
               tls_ca_file, tls_certfile, tls_keyfile
    [limits]   max_request_bytes, max_frames_per_request, max_message_bytes, requests_per_second, burst
    [pipeline] enabled, strain, checkpoint_every_s, alarm_loss_on, alarm_loss_off, calibrations,
               max_backlog_readings (back-pressure: ingest waits while this many readings wait for the pipeline)
    [lake]     path (default: lake/ beside a SQLite store's file; needed with PostgreSQL),
               compact_every_s (the service compacts the ended days this often; 0: only `algaflow compact`)

An environment variable ``ALGAFLOW_<SECTION>__<KEY>`` overrides one key (``ALGAFLOW_HTTP__PORT=9000``);
the file is ``--config``, else ``$ALGAFLOW_CONFIG``, else ``algaflow.toml`` in the working directory if
there is one, else the defaults. Secrets shown by ``algaflow config show`` are masked.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

ENV_PREFIX = "ALGAFLOW_"
DEFAULT_FILE = "algaflow.toml"
SECRET_KEYS = ("password",)


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class StoreSettings(_Section):
    url: str = "sqlite:///algaflow-data/algaflow.db"


class HttpSettings(_Section):
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=0, le=65535)
    tls_certfile: str | None = None
    tls_keyfile: str | None = None


class MqttSettings(_Section):
    mode: Literal["embedded", "external", "off"] = "embedded"
    host: str = "127.0.0.1"
    port: int = Field(1883, ge=0, le=65535)
    username: str | None = None
    password: str | None = None
    shared_group: str = "algaflow"
    client_id: str | None = None  # default algaflow-<shared_group>-<host name>: stable across restarts, one per process
    tls_ca_file: str | None = None
    tls_certfile: str | None = None
    tls_keyfile: str | None = None


class LimitSettings(_Section):
    max_request_bytes: int = Field(8 * 1024 * 1024, gt=0)
    max_frames_per_request: int = Field(10_000, gt=0)
    max_message_bytes: int = Field(1024 * 1024, gt=0)
    requests_per_second: float = Field(200.0, gt=0)
    burst: int = Field(400, gt=0)


class PipelineSettings(_Section):
    enabled: bool = True
    strain: str = "chlorella_vulgaris"  # for units registered without one
    checkpoint_every_s: float = Field(30.0, gt=0)
    alarm_loss_on: float = Field(0.2, gt=0, lt=1)
    alarm_loss_off: float = Field(0.1, gt=0, lt=1)
    calibrations: str | None = None  # folder of `algaflow calibrate --store` files (default: beside a SQLite store)
    max_backlog_readings: int = Field(500_000, gt=0)  # readings waiting for the pipeline before ingest waits too
    late_sample_lag_h: float = Field(72.0, gt=0, le=24 * 30)  # how late a dry weight may come and still count live


class LakeSettings(_Section):
    path: str | None = None
    compact_every_s: float = Field(3600.0, ge=0)


class Settings(_Section):
    store: StoreSettings = Field(default_factory=StoreSettings)
    http: HttpSettings = Field(default_factory=HttpSettings)
    mqtt: MqttSettings = Field(default_factory=MqttSettings)
    limits: LimitSettings = Field(default_factory=LimitSettings)
    pipeline: PipelineSettings = Field(default_factory=PipelineSettings)
    lake: LakeSettings = Field(default_factory=LakeSettings)


def beside_store(settings: Settings, name: str) -> Path | None:
    """``name`` in the folder of a SQLite store; None for a database server."""
    url = settings.store.url
    if "://" not in url or url.startswith("sqlite:///"):
        return Path(url.removeprefix("sqlite:///")).parent / name
    return None


def lake_path(settings: Settings) -> Path | None:
    """Where the Parquet lake is: ``[lake] path``, else ``lake/`` beside a SQLite store, else None."""
    return Path(settings.lake.path) if settings.lake.path else beside_store(settings, "lake")


def calibrations_path(settings: Settings) -> Path | None:
    """Where stored biomass calibrations are read: ``[pipeline] calibrations``, else ``calibrations/`` beside a
    SQLite store, else None (the strains' catalog slopes)."""
    if settings.pipeline.calibrations:
        return Path(settings.pipeline.calibrations)
    return beside_store(settings, "calibrations")


class ConfigError(ValueError):
    """The configuration file or an override is not valid; the message names the key."""


def _overrides(environ: Mapping[str, str]) -> dict[str, dict[str, str]]:
    sections = Settings.model_fields
    found: dict[str, dict[str, str]] = {}
    for name, value in environ.items():
        if not name.startswith(ENV_PREFIX) or "__" not in name or name == "ALGAFLOW_CONFIG":
            continue
        section, _, key = name[len(ENV_PREFIX):].lower().partition("__")
        if section not in sections:
            raise ConfigError(f"{name}: no section {section!r}; sections: {', '.join(sections)}")
        found.setdefault(section, {})[key] = value
    return found


def config_path(path: str | Path | None, environ: Mapping[str, str] | None = None) -> Path | None:
    """Which file is read (module doc), or None for the defaults."""
    environ = os.environ if environ is None else environ
    if path is not None:
        return Path(path)
    if environ.get("ALGAFLOW_CONFIG"):
        return Path(environ["ALGAFLOW_CONFIG"])
    return Path(DEFAULT_FILE) if Path(DEFAULT_FILE).is_file() else None


def load_settings(path: str | Path | None = None, environ: Mapping[str, str] | None = None) -> Settings:
    """The settings from the file (module doc) with the environment's overrides."""
    environ = os.environ if environ is None else environ
    chosen = config_path(path, environ)
    data: dict[str, Any] = {}
    if chosen is not None:
        try:
            data = tomllib.loads(chosen.read_text(encoding="utf-8"))
        except FileNotFoundError as error:
            raise ConfigError(f"configuration file {chosen} does not exist") from error
        except tomllib.TOMLDecodeError as error:
            raise ConfigError(f"{chosen} is not valid TOML: {error}") from error
    for section, values in _overrides(environ).items():
        data.setdefault(section, {})
        if not isinstance(data[section], dict):
            raise ConfigError(f"[{section}] must be a table")
        data[section].update(values)
    try:
        return Settings.model_validate(data)
    except ValidationError as error:
        where = chosen or "the defaults"
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors())
        raise ConfigError(f"configuration ({where} and ALGAFLOW_* overrides): {problems}") from error


def to_toml(settings: Settings) -> str:
    """The effective settings as TOML, secrets masked."""
    lines = []
    for section, values in settings.model_dump().items():
        lines.append(f"[{section}]")
        for key, value in values.items():
            if value is None:
                lines.append(f"# {key} = (not set)")
                continue
            if key in SECRET_KEYS:
                value = "********"
            if isinstance(value, bool):
                text = "true" if value else "false"
            elif isinstance(value, int | float):
                text = repr(value)
            else:
                text = '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'
            lines.append(f"{key} = {text}")
        lines.append("")
    return "\n".join(lines)
