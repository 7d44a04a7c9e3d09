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


def _times(time_us: pd.Series | np.ndarray) -> pd.DatetimeIndex:
    return pd.to_datetime(np.asarray(time_us, dtype=np.int64), unit="us", utc=True)


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
    return figure


def sensor_figure(downsampled: pd.DataFrame) -> go.Figure:
    """One panel per sensor: the bucket means, the min–max envelope shaded (``DOWNSAMPLED_COLUMNS``)."""
    sensors = sorted(set(downsampled.sensor)) if len(downsampled) else []
    rows = max(1, len(sensors))
    titles = [f"{name} ({SENSORS[name].unit})" if name in SENSORS else name for name in sensors] or ["no readings"]
    figure = make_subplots(rows=rows, cols=1, shared_xaxes=True, vertical_spacing=0.02 if rows > 8 else 0.05,
                           subplot_titles=titles)  # fmt: skip
    for index, name in enumerate(sensors, start=1):
        part = downsampled[downsampled.sensor == name]
        times = _times(part.time_us)
        figure.add_trace(go.Scatter(x=np.r_[times, times[::-1]], y=np.r_[part["max"], part["min"].to_numpy()[::-1]],
                                    fill="toself", fillcolor=COLOURS["sensor"], opacity=BAND_OPACITY,
                                    line={"width": 0}, hoverinfo="skip", showlegend=False), row=index, col=1)
        figure.add_trace(go.Scatter(x=times, y=part["mean"], line={"color": COLOURS["sensor"], "width": 1.5},
                                    name=name, showlegend=False), row=index, col=1)  # fmt: skip
    figure.update_layout(height=max(260, 150 * rows), margin={"l": 60, "r": 20, "t": 40, "b": 30},
                         hovermode="x unified", uirevision="sensors")  # fmt: skip
    return figure


__all__ = ["COLOURS", "growth_figure", "sensor_figure"]
