"""Plotly figures of the dashboard: estimates with their ±1.96 sd bands beside the raw sensor traces, in the
catalog's units, one colour per quantity throughout.

    growth_figure     biomass (g/L) and growth rate (1/d) with bands, harvests and dilutions as markers, the
                      forecast time of the next harvest as a dashed line
    sensor_figure     one panel per sensor: the downsampled mean with its min–max envelope
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from algaflow.catalog import SENSORS

Z95 = 1.959964
COLOURS = {"biomass": "#2a7f62", "growth": "#c05a1a", "harvest": "#6a3d9a", "forecast": "#6a3d9a",
           "sensor": "#1f5fa8", "alarm": "#b2182b"}  # fmt: skip
BAND_OPACITY = 0.2


def _times(time_us: pd.Series | np.ndarray) -> np.ndarray:
    """Milliseconds since the epoch (UTC): what a Plotly date axis takes fastest (numbers, not strings)."""
    return np.asarray(time_us, dtype=np.int64) / 1000.0


def _band(figure: go.Figure, times, mean, sd, colour: str, name: str, row: int, scale: float = 1.0) -> None:
    """Mean line and its ±1.96 sd band (a filled polygon: upper edge forward, lower edge back)."""
    upper, lower = (mean + Z95 * sd) * scale, (mean - Z95 * sd) * scale
    figure.add_trace(go.Scatter(x=np.r_[times, times[::-1]], y=np.r_[upper, lower[::-1]], fill="toself",
                                fillcolor=colour, opacity=BAND_OPACITY, line={"width": 0}, hoverinfo="skip",
                                name=f"{name} ±1.96 sd", showlegend=False), row=row, col=1)  # fmt: skip
    figure.add_trace(go.Scatter(x=times, y=mean * scale, line={"color": colour, "width": 2}, name=name),
                     row=row, col=1)  # fmt: skip


def growth_figure(estimates: pd.DataFrame, events: pd.DataFrame, forecast_us: float | None = None) -> go.Figure:
    """Biomass and growth rate with their bands; harvests and dilutions marked; the forecast harvest."""
    figure = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.06,
                           subplot_titles=("biomass (g/L)", "growth rate (1/d)"))  # fmt: skip
    if len(estimates):
        times = _times(estimates.time_us)
        _band(figure, times, estimates.biomass_g_per_l.to_numpy(), estimates.biomass_sd.to_numpy(),
              COLOURS["biomass"], "biomass", 1)  # fmt: skip
        _band(figure, times, estimates.growth_rate_per_h.to_numpy(), estimates.growth_rate_sd.to_numpy(),
              COLOURS["growth"], "growth rate", 2, scale=24.0)  # fmt: skip
    cuts = events[events.kind.isin(["harvest", "dilution"])] if len(events) else events
    for row in cuts.itertuples(index=False):
        moment = _times([row.time_us])[0]
        fraction = (row.params or {}).get("fraction")
        figure.add_vline(x=moment, line={"color": COLOURS["harvest"], "width": 1, "dash": "dot"})
        figure.add_annotation(x=moment, y=1.0, yref="paper", showarrow=False, yanchor="bottom",
                              text=f"{row.kind} {fraction:.0%}" if isinstance(fraction, int | float) else row.kind,
                              font={"color": COLOURS["harvest"], "size": 10})  # fmt: skip
    if forecast_us is not None and np.isfinite(forecast_us):
        moment = _times([int(forecast_us)])[0]
        figure.add_vline(x=moment, line={"color": COLOURS["forecast"], "width": 1, "dash": "dash"})
        figure.add_annotation(x=moment, y=0.5, yref="paper", showarrow=False, text="next harvest (forecast)",
                              textangle=-90, font={"color": COLOURS["forecast"], "size": 10})  # fmt: skip
    figure.update_layout(height=460, margin={"l": 60, "r": 20, "t": 40, "b": 30}, hovermode="x unified",
                         legend={"orientation": "h", "y": -0.08}, uirevision="growth")  # fmt: skip
    figure.update_xaxes(type="date")
    return figure


def sensor_figure(downsampled: pd.DataFrame) -> go.Figure:
    """One panel per sensor, sharing the time axis: the bucket means, the min–max envelope shaded
    (``DOWNSAMPLED_COLUMNS``). Built as one figure with explicit axis domains: a month of 20 sensors is
    ~10,000 points, and ``make_subplots`` with per-trace validation took most of a second."""
    sensors = sorted(set(downsampled.sensor)) if len(downsampled) else []
    rows = max(1, len(sensors))
    gap = 0.25 / rows
    height = (1.0 - gap * (rows - 1)) / rows
    bottom_axis = f"y{rows}" if rows > 1 else "y"
    traces, layout = [], {"height": max(260, 130 * rows), "margin": {"l": 60, "r": 20, "t": 30, "b": 30},
                          "hovermode": "x unified", "uirevision": "sensors", "showlegend": False,
                          "xaxis": {"type": "date", "anchor": bottom_axis}, "annotations": []}  # fmt: skip
    for index, name in enumerate(sensors):
        part = downsampled[downsampled.sensor == name]
        times = _times(part.time_us)
        axis = "y" if index == 0 else f"y{index + 1}"
        top = 1.0 - index * (height + gap)
        layout["yaxis" if index == 0 else f"yaxis{index + 1}"] = {"domain": [max(0.0, top - height), min(1.0, top)],
                                                                  "anchor": "x"}  # fmt: skip
        layout["annotations"].append({"text": f"{name} ({SENSORS[name].unit})" if name in SENSORS else name,
                                      "xref": "paper", "yref": "paper", "x": 0.5, "y": top, "xanchor": "center",
                                      "yanchor": "bottom", "showarrow": False, "font": {"size": 12}})  # fmt: skip
        envelope = np.r_[part["max"].to_numpy(), part["min"].to_numpy()[::-1]]
        traces.append(go.Scatter(x=np.r_[times, times[::-1]], y=envelope, fill="toself", fillcolor=COLOURS["sensor"],
                                 opacity=BAND_OPACITY, line={"width": 0}, hoverinfo="skip", yaxis=axis,
                                 xaxis="x"))  # fmt: skip
        traces.append(go.Scatter(x=times, y=part["mean"].to_numpy(), line={"color": COLOURS["sensor"], "width": 1.5},
                                 name=name, yaxis=axis, xaxis="x"))  # fmt: skip
    if not sensors:
        layout["annotations"].append({"text": "no readings in this range", "xref": "paper", "yref": "paper",
                                      "x": 0.5, "y": 0.5, "showarrow": False})  # fmt: skip
    return go.Figure(data=traces, layout=layout, skip_invalid=False)


__all__ = ["COLOURS", "growth_figure", "sensor_figure"]
