"""Figures for simulation runs (matplotlib, the ``plot`` extra)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd


def _pyplot():
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as error:  # pragma: no cover - only without the extra
        raise ImportError("figures need matplotlib: pip install 'algaflow[plot]'") from error
    return plt


def plot_run(truth: pd.DataFrame, events: pd.DataFrame, path: str | Path, max_units: int = 6) -> Path:
    """Biomass, growth rate, dissolved O2, pH and harvests of up to ``max_units`` units, one PNG."""
    plt = _pyplot()
    units = list(dict.fromkeys(truth["unit_id"]))[:max_units]
    panels = [("biomass_g_per_l", "biomass (g/L)"), ("growth_rate_per_h", "growth rate (1/d)"),
              ("o2_lit_mg_per_l", "DO in tubes (mg/L)"), ("ph_lit", "pH in tubes"),
              ("co2_captured_g", "CO2 captured (kg)")]  # fmt: skip
    figure, axes = plt.subplots(len(panels), 1, figsize=(11, 12), sharex=True)
    harvests = events[events["kind"] == "harvest"] if len(events) else events
    for unit in units:
        rows = truth[truth["unit_id"] == unit]
        days = (rows["time"] - rows["time"].iloc[0]).dt.total_seconds().to_numpy() / 86400.0
        for axis, (column, _) in zip(axes, panels, strict=True):
            values = rows[column].to_numpy(dtype=float)
            values = values * 24.0 if column == "growth_rate_per_h" else values
            values = values / 1000.0 if column == "co2_captured_g" else values
            axis.plot(days, values, lw=0.8, label=unit)
        start = rows["time"].iloc[0]
        for time in harvests[harvests["unit_id"] == unit]["time"]:
            axes[0].axvline((time - start).total_seconds() / 86400.0, color="0.6", lw=0.6, ls=":")
    for axis, (_, label) in zip(axes, panels, strict=True):
        axis.set_ylabel(label)
        axis.grid(alpha=0.3)
    axes[1].axhline(0.0, color="k", lw=0.5)
    axes[0].legend(fontsize=7, ncol=min(len(units), 6), loc="upper left")
    axes[0].set_title("algaflow simulation (dotted lines: harvests)")
    axes[-1].set_xlabel("day")
    figure.tight_layout()
    path = Path(path)
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def plot_productivity(summary: pd.DataFrame, path: str | Path) -> Path:
    """Bar chart of mean productivity and CO2 captured per strain."""
    plt = _pyplot()
    figure, axes = plt.subplots(1, 2, figsize=(11, 4))
    names = summary.index.to_list()
    axes[0].bar(names, summary["productivity_g_per_l_per_day"], color="tab:green")
    axes[0].set_ylabel("mean productivity (g/L/day)")
    axes[1].bar(names, summary["co2_captured_kg_per_unit"], color="tab:blue")
    axes[1].set_ylabel("CO2 captured per unit (kg)")
    for axis in axes:
        axis.tick_params(axis="x", rotation=20)
        axis.grid(alpha=0.3, axis="y")
    figure.tight_layout()
    path = Path(path)
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path
