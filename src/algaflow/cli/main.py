"""``algaflow`` command line (Typer): thin, parses, calls, prints."""

from __future__ import annotations

import math
from importlib import resources
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from algaflow.cli.service import register as register_service_commands
from algaflow.sim.scenario import ScenarioError, load_scenario, parse_scenario

app = typer.Typer(help="algaflow: model, simulate, fuse and run algae photobioreactors.", no_args_is_help=True,
                  pretty_exceptions_enable=False)  # fmt: skip
console = Console(stderr=True)


def shipped_scenarios() -> dict[str, Path]:
    """Example scenarios shipped with the package, by stem."""
    folder = resources.files("algaflow.scenarios")
    return {Path(p.name).stem: Path(str(p)) for p in folder.iterdir() if p.name.endswith(".toml")}


def _fail(message: str) -> None:
    console.print(f"[red]error:[/red] {message}")
    raise typer.Exit(code=2)


@app.command()
def simulate(
    out: Path = typer.Option(..., "--out", help="output folder for telemetry, events and truth (Parquet)"),
    scenario: str | None = typer.Option(None, help="scenario TOML file, or the name of a shipped example"),
    strain: str | None = typer.Option(None, help="strain name from the library (overrides the scenario)"),
    days: float | None = typer.Option(None, min=0.01, help="days to simulate"),
    units: int | None = typer.Option(None, min=1, help="number of reactors"),
    seed: int | None = typer.Option(None, help="random seed"),
    plot: bool = typer.Option(False, "--plot", help="save a PNG of biomass, growth, DO, pH and harvests"),
    telemetry: bool = typer.Option(True, help="write sensor telemetry (off: truth and events only)"),
) -> None:
    """Simulate reactors and write DIR/telemetry.parquet, DIR/events.parquet, DIR/truth.parquet."""
    from algaflow.sim.simulate import simulate as run

    overrides = {"strain": strain, "days": days, "units": units, "seed": seed}
    try:
        if scenario is None:
            chosen = parse_scenario({k: v for k, v in overrides.items() if v is not None}, "defaults")
        else:
            examples = shipped_scenarios()
            path = examples.get(scenario, Path(scenario))
            chosen = load_scenario(path, **overrides)
    except ScenarioError as error:
        _fail(str(error))
        return
    with Progress(TextColumn("[bold]simulating[/bold] {task.description}"), BarColumn(),
                  TextColumn("{task.completed}/{task.total} units"), TimeElapsedColumn(), TimeRemainingColumn(),
                  console=console, transient=False) as progress:  # fmt: skip
        task = progress.add_task(chosen.name, total=chosen.units)
        summary = run(chosen, out, telemetry=telemetry, progress=lambda k: progress.advance(task, k))
    console.print(
        f"wrote {out}/telemetry.parquet ({summary.telemetry_rows:,} readings), events.parquet, truth.parquet; "
        f"harvests per unit: {summary.harvests.tolist()}; CO2 captured: {summary.co2_captured_g.sum() / 1000:.2f} kg"
    )
    if plot:
        import pandas as pd

        from algaflow.cli.plots import plot_run

        figure = plot_run(pd.read_parquet(out / "truth.parquet"), pd.read_parquet(out / "events.parquet"),
                          out / "simulation.png")  # fmt: skip
        console.print(f"figure: {figure}")


TimeFormatOption = typer.Option(None, "--time-format", help="strftime of the files' times, e.g. '%d/%m/%Y %H:%M' "
                                "(default: ISO 8601, or day-/month-first as the dates allow)")
StrictOption = typer.Option(False, "--strict", help="refuse the files if any row cannot be used (default: skip "
                            "and report them by reason)")


@app.command()
def fuse(
    telemetry: Path = typer.Argument(..., help="long-format telemetry (unit_id, time, sensor, value), CSV or Parquet"),
    out: Path = typer.Option(..., "--out", help="estimates file, .csv or .parquet"),
    events: Path | None = typer.Option(None, "--events", help="events file: harvests and dilutions with a known "
                                       "fraction, probe calibrations"),
    strain: str = typer.Option("chlorella_vulgaris", help="strain name: calibration slopes and carbon fraction"),
    smooth: bool = typer.Option(False, "--smooth", help="offline: smoothed (forward–backward) estimates"),
    volume_l: float = typer.Option(80.0, min=0.001, help="culture volume (L), for CO2 captured"),
    calibration: list[Path] = typer.Option([], "--calibration", help="biomass calibration file from "
                                           "`algaflow calibrate` (repeatable, one per sensor)"),
    geometry: str = typer.Option("tube", help="lit part: tube or flat_panel (the model's light response)"),
    light_path_m: float = typer.Option(0.05, min=1e-4, help="tube inner diameter or panel depth, m"),
    lit_volume_l: float = typer.Option(60.0, min=0.001, help="lit volume (L); the rest of --volume-l is the "
                                       "dark tank"),
    time_format: str | None = TimeFormatOption,
    strict: bool = StrictOption,
) -> None:
    """Fuse sensors into biomass, growth rate, CO2 captured and harvest readiness, with uncertainty.

    Where a unit reads its incident light (par_surface), the reactor model's expected growth rate from
    its light, temperature, pH, DO and nitrate sensors informs the growth rate. Rows that cannot be used
    are counted by reason and reported (--strict: refused)."""
    from algaflow.cli.fuse import fuse_file
    from algaflow.cli.table_input import SkippedRows
    from algaflow.fusion.expected_rate import ReactorGeometry

    skipped = SkippedRows()
    try:
        if lit_volume_l > volume_l:
            raise ValueError(f"--lit-volume-l {lit_volume_l} exceeds the culture volume --volume-l {volume_l}")
        reactor = ReactorGeometry(geometry, light_path_m, volume_l - lit_volume_l, lit_volume_l)
        with console.status("fusing") as status:
            result = fuse_file(telemetry, out, events, strain, smooth, volume_l,
                               progress=lambda unit: status.update(f"fused {unit}"),
                               calibration_paths=calibration, reactor=reactor, skipped=skipped,
                               time_format=time_format, strict=strict)  # fmt: skip
    except (ValueError, KeyError) as error:
        _fail(str(error))
        return
    if skipped.total:
        console.print(f"[yellow]{skipped.summary()}[/yellow]")
    last = result.groupby("unit_id").tail(1)
    flagged = (result["sample_flag"] != "used").sum()
    console.print(f"wrote {out}: {len(result):,} estimates for {last.shape[0]} unit(s); {flagged:,} samples flagged")
    for row in last.itertuples():
        gas = ""
        if math.isfinite(row.co2_gas_balance_g):
            gas = (f" (gas balance {row.co2_gas_balance_g:.0f} ± {row.co2_gas_balance_sd:.0f} g, "
                   f"{'agrees' if abs(row.co2_routes_z) < 2 else 'disagrees'}: z {row.co2_routes_z:+.1f})")
        console.print(f"  {row.unit_id}: X {row.biomass_g_per_l:.3f} ± {row.biomass_sd:.3f} g/L, "
                      f"μ {row.growth_rate_per_h * 24:.2f} ± {row.growth_rate_sd * 24:.2f} 1/d, "
                      f"CO2 {row.co2_captured_g:.0f} ± {row.co2_captured_sd:.0f} g{gas}, "
                      f"harvest ready: {row.harvest_ready}")
        if isinstance(row.growth_model_inputs, str) and row.growth_model_inputs:
            console.print(f"    μ informed by the reactor model from {row.growth_model_inputs.replace(',', ', ')}")
        drifting = row.drifting_sensors if isinstance(row.drifting_sensors, str) else ""
        if "," in drifting:
            console.print(f"    [yellow]{drifting.replace(',', ' and ')} disagree: one of them drifts; the estimate "
                          "spans both[/yellow]")
        elif drifting:
            unit_rows = result[result["unit_id"] == row.unit_id]
            since = unit_rows["time"][unit_rows["drifting_sensors"] == drifting].min()
            console.print(f"    [yellow]{drifting} moved faster than any culture can: set aside since "
                          f"{since:%Y-%m-%d %H:%M} UTC; record a calibration event once it is re-zeroed[/yellow]")


@app.command()
def calibrate(
    pairs: Path = typer.Argument(..., help="CSV: dry_weight_g_per_l,reading (biomass) or "
                                 "buffer_ph,millivolts,temperature_c (pH)"),
    sensor: str = typer.Option(..., "--sensor", help="od750, od680, turbidity_tank, turbidity_tube, ph_tank, ph_tube"),
    store: Path = typer.Option(Path("calibrations"), "--store", help="folder of versioned calibration files"),
    strain: str = typer.Option("chlorella_vulgaris", help="strain the biomass curve is for"),
    degree: int = typer.Option(1, min=1, max=2, help="biomass curve: 1 linear, 2 quadratic"),
) -> None:
    """Fit a calibration from paired samples and store it as the next version in --store."""
    from algaflow.cli.calibrate import calibrate_file

    try:
        path, lines = calibrate_file(pairs, sensor, store, strain, degree)
    except (ValueError, KeyError) as error:
        _fail(str(error))
        return
    for line in lines:
        console.print(line)
    console.print(f"stored {path}")


sensors_app = typer.Typer(help="What each sensor contributes, and which are redundant or faulty.",
                          no_args_is_help=True)  # fmt: skip
app.add_typer(sensors_app, name="sensors")


@sensors_app.command("report")
def sensors_report(
    telemetry: Path = typer.Argument(..., help="long-format telemetry (unit_id, time, sensor, value), CSV or Parquet"),
    events: Path | None = typer.Option(None, "--events", help="events file: harvests and dilutions with a known "
                                       "fraction, probe calibrations"),
    strain: str = typer.Option("chlorella_vulgaris", help="strain name: calibration slopes"),
    unit: str | None = typer.Option(None, help="one unit (default: all)"),
    start_h: float | None = typer.Option(None, "--from-h", help="window start, hours after the unit's first sample"),
    end_h: float | None = typer.Option(None, "--to-h", help="window end, hours after the unit's first sample"),
    time_format: str | None = TimeFormatOption,
    strict: bool = StrictOption,
) -> None:
    """Rank each unit's sensors by what the biomass and growth-rate estimate loses without them."""
    from rich.table import Table

    from algaflow.cli.sensors import report_file, report_table
    from algaflow.cli.table_input import SkippedRows

    skipped = SkippedRows()
    try:
        reports = report_file(telemetry, events, strain, unit, start_h, end_h, skipped, time_format, strict)
    except (ValueError, KeyError) as error:
        _fail(str(error))
        return
    if skipped.total:
        console.print(f"[yellow]{skipped.summary()}[/yellow]")
    for name, rows in reports.items():
        table = report_table(rows)
        view = Table(title=f"{name}: sensors ranked by what the estimate loses without them")
        for column in table.columns:
            view.add_column(column, justify="left" if column in ("sensor", "status") else "right",
                            no_wrap=column == "sensor")
        formats = {"samples": "{:,}", "missing": "{:.0%}", "stuck": "{:.0%}", "spikes": "{:.1%}", "jumps": "{}",
                   "saturated": "{:.0%}", "flagged": "{:.1%}", "mu sd alone (1/d)": "{:.3f}",
                   "X loss if removed": "{:+.0%}", "mu loss if removed": "{:+.0%}"}  # fmt: skip
        for record in table.to_dict("records"):
            cells = [("—" if value != value else formats[column].format(value)) if column in formats else str(value)
                     for column, value in record.items()]  # fmt: skip
            view.add_row(*[c.replace("+inf%", "all") for c in cells])
        Console(width=max(console.width, 170)).print(view)


@app.command()
def demo(data: Path = typer.Option(Path("algaflow-data"), "--data", help="folder for the store, outboxes and tokens"),
         port: int = typer.Option(8050, "--port", help="HTTP port of the dashboard and the API"),
         days: float = typer.Option(7.0, "--days", min=0.1, help="simulated days of history before now"),
         speed: float = typer.Option(1440.0, "--speed", min=1.0, help="times real time (1440: a day a minute)"),
         units: int = typer.Option(6, "--units", min=1, max=6, help="reactors in the demo fleet")) -> None:
    """Live demo: service, embedded MQTT broker, a simulated agent per reactor, dashboard on :8050."""
    from algaflow.cli.demo import run_demo

    run_demo(data, port, days, speed, units, console)


@app.command()
def report(out: Path = typer.Option(Path("demo-output"), "--out", help="folder for the report")) -> None:
    """Offline: a 30-day simulation of a small fleet of every shipped strain; prints tables, saves figures."""
    from algaflow.cli.report import run_report

    run_report(out, console)


@app.command()
def scenarios() -> None:
    """List the shipped example scenarios."""
    for name, path in sorted(shipped_scenarios().items()):
        typer.echo(f"{name}\t{path}")


register_service_commands(app)

if __name__ == "__main__":  # pragma: no cover
    app()
