"""``algaflow report``: a 30-day offline simulation of a small fleet per shipped strain, as tables and figures
(what the model does, without the service; ``algaflow demo`` is the live one)."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd
from rich.console import Console
from rich.table import Table

from algaflow.cli.main import shipped_scenarios
from algaflow.cli.plots import plot_productivity, plot_run
from algaflow.sim.scenario import load_scenario
from algaflow.sim.simulate import simulate

DEMO_SCENARIOS = ("lab_tubular_chlorella", "flat_panel_nannochloropsis", "spirulina_no_degassing",
                  "outdoor_scenedesmus_almeria")  # fmt: skip


def productivity_table(truth: pd.DataFrame, volume_l: float) -> pd.DataFrame:
    """Per unit: peak daily and mean productivity (g/L/day, harvested biomass included)."""
    rows = []
    for unit, unit_rows in truth.groupby("unit_id", sort=False):
        produced = unit_rows.set_index("time")["biomass_produced_g"].astype(float)
        daily = produced.resample("1D").last().diff().dropna() / volume_l
        days = (produced.index[-1] - produced.index[0]).total_seconds() / 86400.0
        rows.append({"unit_id": unit, "peak_g_per_l_per_day": float(daily.max()),
                     "mean_g_per_l_per_day": float(produced.iloc[-1] / volume_l / days)})  # fmt: skip
    return pd.DataFrame(rows)


def run_report(out: Path, console: Console) -> None:
    out.mkdir(parents=True, exist_ok=True)
    examples = shipped_scenarios()
    results = []
    for name in DEMO_SCENARIOS:
        scenario = load_scenario(examples[name])
        folder = out / name
        started = time.perf_counter()
        with console.status(f"simulating {scenario.name} ({scenario.units} units × {scenario.days:g} days)…"):
            summary = simulate(scenario, folder, telemetry=name == DEMO_SCENARIOS[0])
        elapsed = time.perf_counter() - started
        truth = pd.read_parquet(folder / "truth.parquet")
        events = pd.read_parquet(folder / "events.parquet")
        volume = scenario.reactor.volume_tank_l + scenario.reactor.volume_lit_l
        productivity = productivity_table(truth, volume)
        produced = truth.groupby("unit_id", sort=False)["biomass_produced_g"].last().to_numpy()
        plot_run(truth, events, folder / "simulation.png")
        results.append({
            "scenario": name, "strain": scenario.resolved_strain().display_name, "units": scenario.units,
            "harvests": int(summary.harvests.sum()),
            "peak_productivity_g_per_l_per_day": productivity["peak_g_per_l_per_day"].mean(),
            "productivity_g_per_l_per_day": productivity["mean_g_per_l_per_day"].mean(),
            "co2_captured_kg_per_unit": float(np.mean(summary.co2_captured_g)) / 1000.0,
            "co2_per_g_biomass": float(np.sum(summary.co2_captured_g) / np.sum(produced)),
            "max_do_tube_mg_per_l": float(truth["o2_lit_mg_per_l"].max()),
            "seconds": elapsed,
        })  # fmt: skip
    report = pd.DataFrame(results).set_index("scenario")
    report.to_csv(out / "summary.csv")
    plot_productivity(report.set_index("strain"), out / "productivity.png")
    table = Table(title="algaflow report: 30 days per scenario (harvest 70 % when growth stops)")
    for column in ("strain", "units", "harvests", "peak g/L/d", "mean g/L/d", "CO2 kg/unit", "CO2 g/g",
                   "max DO mg/L", "run s"):  # fmt: skip
        table.add_column(column, justify="right" if column != "strain" else "left")
    for row in report.itertuples():
        table.add_row(row.strain, str(row.units), str(row.harvests), f"{row.peak_productivity_g_per_l_per_day:.2f}",
                      f"{row.productivity_g_per_l_per_day:.2f}", f"{row.co2_captured_kg_per_unit:.2f}",
                      f"{row.co2_per_g_biomass:.2f}", f"{row.max_do_tube_mg_per_l:.1f}",
                      f"{row.seconds:.1f}")  # fmt: skip
    Console(width=max(console.width, 120)).print(table)
    console.print(f"report: {out / 'summary.csv'}; figures: {out}/*/simulation.png, {out / 'productivity.png'}; "
                  f"telemetry of the lab loop: {out / DEMO_SCENARIOS[0] / 'telemetry.parquet'}")  # fmt: skip
