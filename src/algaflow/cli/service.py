"""CLI commands of the telemetry service and the device agent: serve, agent, admin, mqtt-config, compact,
config."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import typer
from rich.console import Console

console = Console(stderr=True)
admin_app = typer.Typer(help="Register units and issue or revoke tokens (works on the store directly).",
                        no_args_is_help=True)  # fmt: skip
config_app = typer.Typer(help="The effective configuration (TOML file + ALGAFLOW_* overrides).", no_args_is_help=True)
ConfigOption = typer.Option(None, "--config", help="TOML configuration file (default: $ALGAFLOW_CONFIG or "
                                                   "./algaflow.toml)")  # fmt: skip


def _fail(message: str) -> None:
    console.print(f"[red]error:[/red] {message}")
    raise typer.Exit(code=2)


def _settings(config: Path | None):
    from algaflow.service.config import ConfigError, load_settings

    try:
        return load_settings(config)
    except ConfigError as error:
        _fail(str(error))


def serve(config: Path | None = ConfigOption) -> None:
    """Run the service: HTTP API, MQTT bridge (embedded broker by default), live pipeline."""
    from algaflow.service.server import Service

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    settings = _settings(config)
    console.print(f"algaflow service: http://{settings.http.host}:{settings.http.port}/api/v1/docs, store "
                  f"{settings.store.url}, MQTT {settings.mqtt.mode} {settings.mqtt.host}:{settings.mqtt.port}")
    Service(settings).run()


def agent(
    unit: str = typer.Option(..., "--unit", help="this reactor's unit id"),
    driver: str = typer.Option("simulated", "--driver", help="simulated | replay"),
    file: Path | None = typer.Option(None, "--file", help="replay: telemetry CSV or Parquet (long format)"),
    events: Path | None = typer.Option(None, "--events", help="replay: events file"),
    transport: str = typer.Option("mqtt", "--transport", help="mqtt | http"),
    url: str = typer.Option("http://127.0.0.1:8080", "--url", help="http: the service's base URL"),
    host: str = typer.Option("127.0.0.1", "--host", help="mqtt: broker host"),
    port: int = typer.Option(1883, "--port", help="mqtt: broker port"),
    token: str | None = typer.Option(None, "--token", envvar="ALGAFLOW_DEVICE_TOKEN", help="device token"),
    tls_ca: Path | None = typer.Option(None, "--tls-ca", help="CA certificate: MQTT over TLS, or the HTTPS "
                                       "server's CA"),
    outbox: Path = typer.Option(Path("algaflow-outbox.db"), "--outbox", help="on-device outbox (SQLite)"),
    speed: float = typer.Option(1.0, "--speed", min=1e-6, help="play the driver this many times faster"),
    days: float = typer.Option(2.0, "--days", help="simulated: days of culture"),
    backfill_days: float = typer.Option(0.0, "--backfill-days", help="start the driver's clock this far back"),
    seed: int = typer.Option(0, "--seed", help="simulated: random seed"),
    strain: str | None = typer.Option(None, "--strain", help="simulated: strain"),
    until_drained: bool = typer.Option(False, "--until-drained", help="exit when the driver is done and all is "
                                                                      "acknowledged"),
    status: bool = typer.Option(False, "--status", help="print the outbox's state (frames waiting, dead letters, "
                                                        "next seq) and exit"),
    requeue_dead_letters: bool = typer.Option(False, "--requeue-dead-letters", help="move the outbox's dead "
                                              "letters back to be sent again (the cause fixed) and exit"),
) -> None:
    """Run the device agent: read the driver into the outbox and send it to the service."""
    import re
    from datetime import UTC, datetime, timedelta

    from algaflow.agent.agent import Agent
    from algaflow.agent.drivers import replay_driver, simulated_driver
    from algaflow.agent.transport import HttpTransport, MqttTransport
    from algaflow.catalog.frames import UNIT_ID_PATTERN

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    if not re.match(UNIT_ID_PATTERN, unit):
        _fail(f"unit id {unit!r} must match {UNIT_ID_PATTERN}")
    if status or requeue_dead_letters:
        box = _open_outbox(outbox, unit, existing=True)
        try:
            if requeue_dead_letters:
                moved = box.requeue_dead()
                console.print(f"outbox {outbox}: {moved} dead letters moved back to be sent again")
            if status:
                _print_outbox_state(box, outbox, unit)
        finally:
            box.close()
        return
    start = datetime.now(UTC) - timedelta(days=backfill_days)
    try:
        if driver == "simulated":
            source = simulated_driver(days=days, seed=seed, strain=strain, start=start, speed=speed)
        elif driver == "replay":
            if file is None:
                _fail("--driver replay needs --file")
            source = replay_driver(file, unit, start, speed, events)
        else:
            _fail(f"unknown driver {driver!r}; drivers: simulated, replay")
    except (ValueError, KeyError, FileNotFoundError) as error:
        _fail(str(error))
    if transport not in ("http", "mqtt"):
        _fail(f"unknown transport {transport!r}; transports: mqtt, http")
    if transport == "http" and not token:
        _fail("--transport http needs --token (or ALGAFLOW_DEVICE_TOKEN)")
    box = _open_outbox(outbox, unit)
    try:
        if transport == "http":
            channel = HttpTransport(url, token, verify=str(tls_ca) if tls_ca else True)
        else:
            from algaflow.service.mqtt_bridge import tls_context

            channel = MqttTransport(unit, host, port, token,
                                    tls=tls_context(str(tls_ca), None, None) if tls_ca else None)  # fmt: skip
    except (OSError, ValueError) as error:  # ssl.SSLError is an OSError
        box.close()
        _fail(f"cannot set up the {transport} transport: {error}")
    runner = Agent(source, box, channel)
    console.print(f"agent {unit}: {driver} driver → {transport}; outbox {outbox} ({box.pending()} waiting, "
                  f"{box.dead_count()} dead letters)")
    try:
        runner.run(until_drained=until_drained)
    except KeyboardInterrupt:
        pass
    finally:
        channel.close()
        refused = f", {runner.refused_acks} acknowledgements refused" if runner.refused_acks else ""
        console.print(f"agent {unit}: {runner.acknowledged} frames acknowledged, {box.pending()} waiting, "
                      f"{box.dead_count()} dead letters{refused}")
        box.close()


def _open_outbox(path: Path, unit: str, existing: bool = False):
    """The agent's outbox, or a one-line error; ``existing``: it must be there already (nothing is created in a
    file that is not an outbox)."""
    import sqlite3
    from contextlib import closing

    from algaflow.agent.outbox import Outbox

    if existing:
        if not path.is_file():
            _fail(f"no outbox at {path}")
        try:
            with closing(sqlite3.connect(path.resolve().as_uri() + "?mode=ro", uri=True)) as probe:
                found = probe.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'outbox'").fetchone()
        except sqlite3.Error as error:
            _fail(f"cannot open the outbox {path}: {error}")
        if not found:
            _fail(f"{path} is not an agent outbox (it has no outbox table)")
    try:
        return Outbox(path, unit)
    except (sqlite3.Error, OSError) as error:
        _fail(f"cannot open the outbox {path}: {error}")


def _print_outbox_state(box, path: Path, unit: str, last: int = 5) -> None:
    """``agent --status``: the outbox's state on stdout."""
    from datetime import UTC, datetime

    state = box.state()
    typer.echo(f"outbox {path} (unit {unit})")
    typer.echo(f"frames waiting: {state.waiting} ({state.sent} sent, not acknowledged)")
    typer.echo(f"dead letters: {state.dead}")
    for letter in box.dead_letters(last=last):
        when = datetime.fromtimestamp(letter.dead_at, UTC).isoformat(timespec="seconds")
        detail = " ".join(letter.detail.split())[:200]
        typer.echo(f"  seq {letter.seq}  {letter.reason}  {when}  {detail}")
    if state.dead > last:
        typer.echo(f"  ({state.dead - last} older not shown)")
    typer.echo(f"next seq: {state.next_seq}")


def _store(config: Path | None):
    from algaflow.store import open_store

    return open_store(_settings(config).store.url)


@admin_app.command("register-unit")
def register_unit(unit: str = typer.Argument(..., help="unit id"),
                  strain: str = typer.Option("chlorella_vulgaris", help="strain from the library"),
                  volume_l: float = typer.Option(80.0, help="culture volume (L)"),
                  sensors: str = typer.Option("", help="comma-separated catalog sensors the unit carries"),
                  site: str = typer.Option("", help="site name"),
                  config: Path | None = ConfigOption) -> None:  # fmt: skip
    """Register a unit (or replace its metadata)."""
    from pydantic import ValidationError

    from algaflow.service.app import UnitRegistration

    try:
        registration = UnitRegistration(unit_id=unit, strain=strain, volume_l=volume_l, site={"name": site},
                                        sensors=[s.strip() for s in sensors.split(",") if s.strip()])  # fmt: skip
    except ValidationError as error:
        _fail("; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors()))
    with _store(config) as store:
        store.register_unit(unit, registration.model_dump(exclude={"unit_id"}))
    console.print(f"registered {unit}")


@admin_app.command("issue-token")
def issue_token(kind: str = typer.Argument(..., help="device | user"),
                unit: str | None = typer.Option(None, "--unit", help="device: its unit"),
                role: str = typer.Option("reader", "--role", help="user: reader | operator | admin"),
                label: str = typer.Option("", "--label", help="a note kept with the token"),
                expires_in_days: float | None = typer.Option(None, "--expires-in-days",
                                                             help="the token stops working after this many days "
                                                                  "(default: never)"),
                config: Path | None = ConfigOption) -> None:  # fmt: skip
    """Issue a token and print it (only its hash is stored: it cannot be shown again)."""
    from algaflow.service.auth import issue_device_token, issue_user_token

    lifetime_s = None if expires_in_days is None else expires_in_days * 86400.0
    with _store(config) as store:
        try:
            if kind == "device":
                if unit is None:
                    _fail("a device token needs --unit")
                token = issue_device_token(store, unit, label, lifetime_s)
            elif kind == "user":
                token = issue_user_token(store, role, label, lifetime_s)
            else:
                _fail(f"unknown token kind {kind!r}; kinds: device, user")
        except (KeyError, ValueError) as error:
            _fail(str(error.args[0]))
    typer.echo(token)


@admin_app.command("list-tokens")
def list_tokens(config: Path | None = ConfigOption) -> None:
    """Token hashes (prefix) and what they grant."""
    with _store(config) as store:
        for token_hash, record in store.tokens().items():
            shown = {k: v for k, v in record.items() if k != "mosquitto_hash"}
            typer.echo(f"{token_hash[:16]}  {json.dumps(shown)}")


@admin_app.command("revoke-token")
def revoke_token(hash_prefix: str = typer.Argument(..., help="the start of the hash list-tokens shows"),
                 config: Path | None = ConfigOption) -> None:  # fmt: skip
    """Revoke the token whose hash starts with HASH_PREFIX."""
    with _store(config) as store:
        matches = [h for h in store.tokens() if h.startswith(hash_prefix)]
        if len(matches) != 1:
            _fail(f"{len(matches)} tokens match {hash_prefix!r}; give a longer prefix")
        store.delete_token(matches[0])
    console.print(f"revoked {matches[0][:16]}")


def mqtt_config(out: Path = typer.Option(Path("mosquitto"), "--out", help="folder for mosquitto.conf, passwd, acl"),
                port: int = typer.Option(1883, "--port"), host: str = typer.Option("0.0.0.0", "--host"),
                service_password: str | None = typer.Option(None, "--service-password",
                                                            help="default: a new random one, printed"),
                tls_cert: str | None = typer.Option(None, "--tls-cert"), tls_key: str | None = typer.Option(None,
                                                                                                "--tls-key"),
                tls_ca: str | None = typer.Option(None, "--tls-ca"),
                persistence_dir: str | None = typer.Option(None, "--persistence-dir"),
                run_as: str | None = typer.Option(None, "--run-as", help="user Mosquitto runs as when started "
                                                  "as root (default: mosquitto)"),
                config: Path | None = ConfigOption) -> None:  # fmt: skip
    """Write a Mosquitto configuration with per-device credentials and ACLs from the store's device tokens."""
    from algaflow.service.mosquitto import SERVICE_USER, write_mosquitto_config

    if tls_cert and not tls_key:
        _fail("--tls-cert needs --tls-key")
    settings = _settings(config)
    with _store(config) as store:
        files = write_mosquitto_config(store, out, port, host, service_password, tls_cert, tls_key, tls_ca,
                                       settings.mqtt.shared_group, persistence_dir, run_as)  # fmt: skip
    console.print(f"wrote {files.conf}, {files.passwd} ({files.devices} devices), {files.acl}")
    console.print(f"run: mosquitto -c {files.conf}; the service connects as {SERVICE_USER!r} with password:")
    typer.echo(files.service_password)


def compact(lake: Path | None = typer.Option(None, "--lake", help="lake folder (default: [lake] path, or lake/ "
                                                                 "beside the SQLite store)"),
            units: str = typer.Option("", "--units", help="comma-separated unit ids (default: all)"),
            until: str | None = typer.Option(None, "--until", help="compact only the UTC days ended by this ISO "
                                                                   "time (default: every day, today's so far too)"),
            config: Path | None = ConfigOption) -> None:  # fmt: skip
    """Write the store's readings to the Parquet lake, one file per unit and UTC day (only what changed)."""
    from datetime import UTC, datetime

    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from algaflow.service.config import lake_path
    from algaflow.store import UnknownUnitError
    from algaflow.store.base import to_time_us
    from algaflow.store.lake import compact as run

    settings = _settings(config)
    folder = lake or lake_path(settings)
    if folder is None:
        _fail(f"no lake folder for the store {settings.store.url}: give --lake or set [lake] path")
    until_us = None
    if until is not None:
        try:
            moment = datetime.fromisoformat(until)
        except ValueError:
            _fail(f"--until {until!r} is not an ISO 8601 time (e.g. 2026-11-01T00:00:00Z)")
        until_us = to_time_us(moment if moment.tzinfo else moment.replace(tzinfo=UTC))
    chosen = [u.strip() for u in units.split(",") if u.strip()] or None
    with _store(config) as store, Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
                                           console=console, transient=True) as progress:  # fmt: skip
        task = progress.add_task("compacting", total=None)
        try:
            report = run(store, folder, chosen, until_us,
                         progress=lambda unit, day: progress.update(task, description=f"wrote {unit} {day}"))
        except UnknownUnitError as error:
            _fail(str(error.args[0]))
    console.print(f"lake {folder}: {len(report.written)} partitions written ({report.rows:,} readings), "
                  f"{report.up_to_date} already up to date")


@config_app.command("show")
def config_show(config: Path | None = ConfigOption) -> None:
    """Print the effective configuration as TOML (secrets masked)."""
    from algaflow.service.config import config_path, to_toml

    settings = _settings(config)
    console.print(f"# from {config_path(config) or 'the defaults'} and ALGAFLOW_* overrides")
    typer.echo(to_toml(settings))


def register(app: typer.Typer) -> None:
    app.command()(serve)
    app.command()(agent)
    app.command("mqtt-config")(mqtt_config)
    app.command()(compact)
    app.add_typer(admin_app, name="admin")
    app.add_typer(config_app, name="config")
