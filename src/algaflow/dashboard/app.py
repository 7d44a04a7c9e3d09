"""The operator's dashboard: a Dash app mounted on the service's FastAPI app (one process, one port).

Views (``dcc.Location`` paths):

    /               fleet: every unit's state, biomass and growth rate ± 1.96 sd, harvest readiness, open
                    alarms, CO2 captured (per unit and in all, with its forest equivalent); sortable and
                    filterable, refreshed every ``refresh_s`` without a reload
    /unit/<id>      one unit: fused estimates with their bands and harvests, the forecast of the next
                    harvest, raw sensor traces downsampled by the server for the chosen time range
                    (``?range=6 h`` … ``30 days``, ``all``; 24 h by default), each sensor's health and
                    worth over the last day and the calibration in use (dashboard.sensor_panel), the
                    events log with a form to record a harvest, dilution, dry-weight sample, probe
                    recalibration or note, and CSV / Parquet export
    /alarms         open and past alarms with their reasons; operators acknowledge them; admins also see the
                    records the live pipeline quarantined (service.quarantine)

Sign-in: a user token (``algaflow admin issue-token user --role reader|operator|admin``), kept in the
browser's session storage and checked against the store's hashes on every callback; a reader sees
everything and may not record events or acknowledge alarms.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from urllib.parse import parse_qs

import dash
import numpy as np
from dash import Dash, Input, Output, State, dash_table, dcc, html

from algaflow.control.harvest import HarvestPolicy, hours_until_growth_stops
from algaflow.dashboard.figures import Z95, growth_figure, sensor_figure
from algaflow.dashboard.sensor_panel import COLUMNS as HEALTH_COLUMNS
from algaflow.dashboard.sensor_panel import HEALTH_WINDOW_H, TROUBLE, calibration_text, sensor_panel
from algaflow.dashboard.status import AlarmBook, fleet_status
from algaflow.service.auth import Principal, authenticate
from algaflow.service.events import EventRejectedError, record_event
from algaflow.service.pipeline import LivePipeline
from algaflow.store import Store
from algaflow.store.base import time_window, to_time_us

RANGES_H = {"6 h": 6, "24 h": 24, "7 days": 168, "30 days": 720, "all": None}
EVENT_FORM_KINDS = {"harvest": "harvest done (fraction removed)", "dilution": "dilution (fraction replaced)",
                    "dry_weight_sample": "dry-weight sample (g/L)",
                    "calibration": "probes recalibrated (re-zeroed: a suspended probe is used again)",
                    "note": "note"}  # fmt: skip
UNIT_PATH = re.compile(r"^/unit/(?P<unit>[A-Za-z0-9][A-Za-z0-9_.-]{0,63})$")
HOUR_US = 3_600_000_000
PANEL_DELAY_S = 1.5


def _bucket_s(hours: float | None) -> int:
    """Server-side downsampling for a time range: about 250 points per sensor, whole minutes (a month: 2 h 52 min
    buckets, whose min–max envelope keeps the extremes; 500 points drew a month of 20 sensors 0.2 s slower)."""
    if hours is None:
        return 3600
    return max(60, int(hours * 3600 / 250) // 60 * 60)


def _fmt(mean: float, sd: float, digits: int, scale: float = 1.0) -> str:
    if not np.isfinite(mean):
        return "–"
    return f"{mean * scale:.{digits}f} ± {Z95 * sd * scale:.{digits}f}"


def _when(time_us: int | None) -> str:
    if time_us is None:
        return "never"
    try:
        return datetime.fromtimestamp(time_us / 1e6, tz=UTC).strftime("%Y-%m-%d %H:%M UTC")
    except (ValueError, OverflowError, OSError):  # a quarantined record's time may lie off the calendar
        return f"{time_us} µs since 1970"


def create_dashboard(store: Store, pipeline: LivePipeline | None = None, refresh_s: float = 2.0,
                     clock=time.time, last_heard: Mapping[str, float] | None = None) -> Dash:  # fmt: skip
    """The Dash app over ``store`` (module doc); ``pipeline`` receives the events recorded in forms;
    ``last_heard`` (unit → wall-clock s of its last frame, the ingestor's) tells online from offline."""
    app = Dash(__name__, title="algaflow", suppress_callback_exceptions=True, update_title=None)
    cache_plotly(app)
    first_estimate_us: dict[str, int] = {}
    book = AlarmBook()  # alarms folded tick by tick (dashboard.status)

    def signed_in(token: str | None) -> Principal | None:
        principal = authenticate(store, token)
        return principal if principal is not None and principal.may_read else None

    app.layout = html.Div([
        dcc.Location(id="url"),
        dcc.Store(id="token", storage_type="session"),
        dcc.Interval(id="tick", interval=int(refresh_s * 1000)),
        html.Header([
            html.H1("algaflow", style={"display": "inline-block", "marginRight": "2em"}),
            dcc.Link("Fleet", href="/", id="nav-fleet", style={"marginRight": "1em"}),
            dcc.Link("Alarms", href="/alarms", id="nav-alarms", style={"marginRight": "1em"}),
            html.Span(id="who", style={"float": "right", "color": "#555"}),
        ]),
        html.Div(id="sign-in", children=[
            html.Label("User token", htmlFor="token-input"),
            dcc.Input(id="token-input", type="password", placeholder="afu_…", style={"width": "28em"}),
            html.Button("Sign in", id="sign-in-button"),
            html.Div(id="sign-in-message", style={"color": "#b2182b"}),
        ]),
        html.Main(id="page"),
    ], style={"fontFamily": "system-ui, sans-serif", "margin": "0 2em"})  # fmt: skip

    @app.callback(Output("token", "data"), Output("sign-in-message", "children"),
                  Input("sign-in-button", "n_clicks"), State("token-input", "value"), prevent_initial_call=True)
    def sign_in(_clicks, token):
        if signed_in(token) is None:
            return dash.no_update, "not a valid user token"
        return token, ""

    @app.callback(Output("page", "children"), Output("sign-in", "style"), Output("who", "children"),
                  Input("url", "pathname"), Input("token", "data"), State("url", "search"))
    def page(path, token, search):
        principal = signed_in(token)
        if principal is None:
            return html.P("Sign in with a user token to see the fleet."), {}, ""
        who = f"signed in: {principal.role}{' (' + principal.label + ')' if principal.label else ''}"
        hidden = {"display": "none"}
        match = UNIT_PATH.match(path or "/")
        if match:
            unit_id = match["unit"]
            if store.unit(unit_id) is None:
                return html.P(f"no unit {unit_id!r}"), hidden, who
            chosen = parse_qs((search or "").lstrip("?")).get("range", ["24 h"])[0]
            return unit_layout(unit_id, principal, chosen if chosen in RANGES_H else "24 h"), hidden, who
        if path == "/alarms":
            return alarms_layout(principal), hidden, who
        return fleet_layout(), hidden, who

    # ---- fleet ------------------------------------------------------------------------------------------------
    def fleet_layout():
        columns = [("unit", "unit"), ("state", "state"), ("last seen", "last_seen"), ("strain", "strain"),
                   ("site", "site"), ("biomass (g/L)", "biomass"), ("growth rate (1/d)", "growth"),
                   ("harvest", "harvest"), ("open alarms", "alarms"), ("CO2 captured (kg)", "co2"),
                   ("forest (acres)", "acres")]  # fmt: skip
        return html.Div([
            html.H2("Fleet"),
            html.P(id="fleet-total"),
            dash_table.DataTable(id="fleet-table", columns=[{"name": n, "id": i, "presentation": "markdown"}
                                                            if i == "unit" else {"name": n, "id": i}
                                                            for n, i in columns],
                                 sort_action="native", filter_action="native", page_size=50,
                                 style_cell={"textAlign": "left", "padding": "4px"},
                                 style_data_conditional=[{"if": {"filter_query": "{alarms} != ''"},
                                                          "backgroundColor": "#fde0dd"}]),
            html.P("Biomass and growth rate are the fused estimates ± 1.96 sd (95 %). Forest: the acres of "
                   "average US forest that remove as much CO2 in a year as the unit at its rate so far "
                   "(US EPA: 0.84 t CO2 per acre per year).", style={"color": "#555", "fontSize": "0.9em"}),
        ])  # fmt: skip

    @app.callback(Output("fleet-table", "data"), Output("fleet-total", "children"), Input("tick", "n_intervals"),
                  State("token", "data"))
    def fleet_rows(_tick, token):
        if signed_in(token) is None:
            return [], ""
        rows, total_g, total_var, acres = [], 0.0, 0.0, 0.0
        heard = {unit: int(at * 1e6) for unit, at in dict(last_heard or {}).items()}
        for status in fleet_status(store, int(clock() * 1e6), first_estimate_us, heard, book):
            open_alarms = ", ".join(alarm.label for alarm in status.open_alarms if alarm.kind != "harvest")
            rows.append({"unit": f"[{status.unit_id}](/unit/{status.unit_id})",
                         "state": "online" if status.online else "offline", "last_seen": _when(status.last_seen_us),
                         "strain": status.strain, "site": status.site,
                         "biomass": _fmt(status.biomass_g_per_l, status.biomass_sd, 2),
                         "growth": _fmt(status.growth_rate_per_h, status.growth_rate_sd, 2, 24.0),
                         "harvest": "ready" if status.harvest_ready else "",
                         "alarms": open_alarms,
                         "co2": _fmt(status.co2_captured_g, status.co2_captured_sd, 3, 1e-3),
                         "acres": f"{status.tree_acres:.2f}" if np.isfinite(status.tree_acres) else "–"})  # fmt: skip
            if np.isfinite(status.co2_captured_g):
                total_g += status.co2_captured_g
                total_var += status.co2_captured_sd**2
                acres += status.tree_acres if np.isfinite(status.tree_acres) else 0.0
        total = (f"{len(rows)} units; CO2 captured in all: {_fmt(total_g, np.sqrt(total_var), 2, 1e-3)} kg, as much "
                 f"in a year as {acres:.1f} acres of forest")
        return rows, total

    # ---- one unit ---------------------------------------------------------------------------------------------
    def unit_layout(unit_id: str, principal: Principal, chosen: str = "24 h"):
        metadata = store.unit(unit_id) or {}
        may_post = principal.may_post_events
        return html.Div([
            dcc.Store(id="unit-id", data=unit_id),
            dcc.Store(id="unit-live-stamp"),
            dcc.Interval(id="sensor-tick", interval=int(max(refresh_s, 1.0) * 10_000)),
            dcc.Interval(id="panel-first", interval=int(PANEL_DELAY_S * 1000), max_intervals=1),
            html.H2(f"Unit {unit_id}"),
            html.P(f"strain {metadata.get('strain', '?')}, volume {metadata.get('volume_l', '?')} L, sensors "
                   f"{', '.join(metadata.get('sensors') or []) or 'as they report'}"),
            html.Div([html.Label("time range "), dcc.RadioItems(id="range", options=list(RANGES_H), value=chosen,
                                                               inline=True)]),
            html.Div(id="unit-summary"),
            dcc.Graph(id="growth-graph"),
            html.H3("Sensors (mean per bucket, min–max shaded)"),
            dcc.Graph(id="sensor-graph"),
            html.H3(f"Sensor health and what each sensor is worth (last {HEALTH_WINDOW_H:.0f} h)"),
            html.P(id="calibration-line"),
            dash_table.DataTable(id="sensor-health", columns=[{"name": n, "id": i} for n, i in HEALTH_COLUMNS],
                                 sort_action="native", style_cell={"textAlign": "left", "padding": "4px"},
                                 style_data_conditional=[{"if": {"filter_query": f"{{status}} = '{status}'"},
                                                          "backgroundColor": "#fde0dd"} for status in TROUBLE]),
            html.P("Missing: share of the samples the sensor's own sampling period promises; set aside: samples "
                   "the growth chain rejected, down-weighted, found invalid or withheld; sd without it: how much "
                   "the biomass and growth-rate sd would grow if the sensor were removed (none: redundant). "
                   "Disagrees: its "
                   "calibrated reading drifts against another sensor of the same quantity. Outgrowing: it moved "
                   "faster than any culture can grow; its readings are set aside until the probes are "
                   "recalibrated (record a calibration event).",
                   style={"color": "#555", "fontSize": "0.9em"}),
            html.H3("Events"),
            dash_table.DataTable(id="events-table", columns=[{"name": n, "id": n} for n in ("time", "kind", "params")],
                                 page_size=15, style_cell={"textAlign": "left"}),
            html.H3("Record an event"),
            html.Div([
                html.Div([html.Label("kind", htmlFor="event-kind"),
                          dcc.RadioItems(id="event-kind", options=[{"label": v, "value": k} for k, v in
                                                                   EVENT_FORM_KINDS.items()], value="harvest")]),
                html.Div([html.Label("value (fraction, or g/L for a dry weight)", htmlFor="event-value"),
                          dcc.Input(id="event-value", type="number", value=0.7, step="any"),
                          html.Span(id="event-value-error", className="field-error", style={"color": "#b2182b"})]),
                html.Div([html.Label("time (UTC, empty: now)", htmlFor="event-time"),
                          dcc.Input(id="event-time", type="text", placeholder="2026-11-22T10:30"),
                          html.Span(id="event-time-error", className="field-error", style={"color": "#b2182b"})]),
                html.Div([html.Label("note", htmlFor="event-note"), dcc.Input(id="event-note", type="text")]),
                html.Button("Record", id="event-submit", disabled=not may_post),
                html.Span("" if may_post else " (read-only role: recording needs an operator token)"),
                html.Div(id="event-message"),
            ]),
            html.H3("Export"),
            html.Button("CSV", id="export-csv"), html.Button("Parquet", id="export-parquet"),
            dcc.Download(id="export-download"),
        ])

    def unit_window(unit_id: str, chosen: str) -> tuple[int | None, int, float | None]:
        """[start, end) of the chosen range, ending at the unit's last frame (or now)."""
        hours = RANGES_H.get(chosen)
        last = store.last_frame(unit_id)
        end_us = (last[1] + 1) if last else int(clock() * 1e6)
        return (None if hours is None else end_us - int(hours * HOUR_US)), end_us, hours

    @app.callback(Output("growth-graph", "figure"), Output("events-table", "data"), Output("unit-summary", "children"),
                  Output("unit-live-stamp", "data"), Input("tick", "n_intervals"), Input("range", "value"),
                  State("unit-id", "data"), State("token", "data"), State("unit-live-stamp", "data"))  # fmt: skip
    def unit_live(_tick, chosen, unit_id, token, stamp):
        """What changes with every frame: estimates, their forecast and the events (light enough for each tick);
        nothing is sent when the unit has no new estimate or event since the last tick (the browser would
        draw the same figure again)."""
        if signed_in(token) is None or unit_id is None:
            raise dash.exceptions.PreventUpdate
        start_us, end_us, _ = unit_window(unit_id, chosen)
        estimates = store.estimates(unit_id, start_us, end_us)
        all_events = store.events(unit_id)  # the log shows them all; the figure those in the range
        now_stamp = [chosen, len(estimates), int(estimates.time_us.iloc[-1]) if len(estimates) else None,
                     len(all_events), int(all_events.time_us.iloc[-1]) if len(all_events) else None]  # fmt: skip
        if now_stamp == stamp:
            raise dash.exceptions.PreventUpdate
        first_us, last_us = time_window(start_us, end_us)
        events = all_events[(all_events.time_us >= first_us) & (all_events.time_us < last_us)]
        forecast_us = None
        if len(estimates) > 2:
            times_h = estimates.time_us.to_numpy() / HOUR_US
            hours_left = hours_until_growth_stops(times_h, estimates.growth_rate_per_h.to_numpy(),
                                                  HarvestPolicy().growth_threshold_per_h)[-1]  # fmt: skip
            if np.isfinite(hours_left) and hours_left > 0:
                forecast_us = float(estimates.time_us.iloc[-1] + hours_left * HOUR_US)
        log = [{"time": _when(int(r.time_us)), "kind": r.kind, "params": str(r.params or "")}
               for r in all_events.iloc[::-1].itertuples(index=False)]  # fmt: skip
        summary = "no estimates yet"
        if len(estimates):
            row = estimates.iloc[-1]
            summary = (f"latest ({_when(int(row.time_us))}): biomass {_fmt(row.biomass_g_per_l, row.biomass_sd, 3)} "
                       f"g/L, growth rate {_fmt(row.growth_rate_per_h, row.growth_rate_sd, 3, 24.0)} 1/d, CO2 "
                       f"{_fmt(row.co2_captured_g, row.co2_captured_sd, 1)} g; harvest "
                       f"{'ready' if row.harvest_ready else 'not yet'}"
                       + (f", forecast {_when(int(forecast_us))}" if forecast_us else ""))  # fmt: skip
        return growth_figure(estimates, events, forecast_us), log, summary, now_stamp

    @app.callback(Output("sensor-graph", "figure"), Input("sensor-tick", "n_intervals"), Input("range", "value"),
                  State("unit-id", "data"), State("token", "data"))  # fmt: skip
    def unit_sensors(_tick, chosen, unit_id, token):
        """The raw traces, downsampled by the server to about 250 points per sensor: on a slower tick."""
        if signed_in(token) is None or unit_id is None:
            raise dash.exceptions.PreventUpdate
        start_us, end_us, hours = unit_window(unit_id, chosen)
        return sensor_figure(store.readings(unit_id, start_us=start_us, end_us=end_us, every_s=_bucket_s(hours)))

    @app.callback(Output("sensor-health", "data"), Output("calibration-line", "children"),
                  Input("panel-first", "n_intervals"), Input("sensor-tick", "n_intervals"), State("unit-id", "data"),
                  State("token", "data"), prevent_initial_call=True)  # fmt: skip
    def unit_sensor_health(_first, _tick, unit_id, token):
        """Each sensor's health and worth over the last day, and the calibration in use: once the graphs have
        been drawn (``PANEL_DELAY_S`` after the view opens: on a small machine its computation would compete
        with the browser drawing them), then on the slow tick."""
        if signed_in(token) is None or unit_id is None:
            raise dash.exceptions.PreventUpdate
        _, end_us, _ = unit_window(unit_id, "24 h")
        curve = pipeline.calibration_in_use(unit_id) if pipeline is not None else None
        metadata = store.unit(unit_id) or {}
        return (sensor_panel(store, unit_id, end_us, curve, metadata=metadata),
                calibration_text(metadata, curve))  # fmt: skip

    @app.callback(Output("event-message", "children"), Output("event-value-error", "children"),
                  Output("event-time-error", "children"), Input("event-submit", "n_clicks"),
                  State("unit-id", "data"), State("event-kind", "value"), State("event-value", "value"),
                  State("event-time", "value"), State("event-note", "value"), State("token", "data"),
                  prevent_initial_call=True)  # fmt: skip
    def submit_event(_clicks, unit_id, kind, value, when, note, token):
        principal = signed_in(token)
        if principal is None or not principal.may_post_events:
            return "recording events needs an operator or admin token", "", ""
        if when:
            try:
                moment = datetime.fromisoformat(when)
            except ValueError:
                return "", "", "not a time: use YYYY-MM-DDTHH:MM (UTC)"
            moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
        else:
            moment = datetime.fromtimestamp(clock(), tz=UTC)
        params: dict = {"text": note} if note else {}
        if kind in ("harvest", "dilution"):
            params["fraction"] = value
        elif kind == "dry_weight_sample":
            params["g_per_l"] = value
        try:
            record_event(store, pipeline, unit_id, kind, params, moment)
        except EventRejectedError as error:
            if error.field == "time":
                return "", "", error.message
            if error.field in ("fraction", "g_per_l"):
                return "", error.message, ""
            return error.message, "", ""
        return f"recorded {kind} at {_when(to_time_us(moment))}", "", ""

    @app.callback(Output("export-download", "data"), Input("export-csv", "n_clicks"),
                  Input("export-parquet", "n_clicks"), State("unit-id", "data"), State("token", "data"),
                  prevent_initial_call=True)  # fmt: skip
    def export(_csv, _parquet, unit_id, token):
        from algaflow.service.export import export_unit

        if signed_in(token) is None:
            raise dash.exceptions.PreventUpdate
        file_format = "parquet" if dash.ctx.triggered_id == "export-parquet" else "csv"
        content = export_unit(store, unit_id, None, None, file_format)
        return dcc.send_bytes(content, f"{unit_id}-{file_format}.zip")

    # ---- alarms -------------------------------------------------------------------------------------------------
    def alarms_layout(principal: Principal):
        return html.Div([
            html.H2("Alarms"),
            dash_table.DataTable(id="alarms-table", columns=[{"name": n, "id": n} for n in
                                                             ("unit", "what", "severity", "opened", "closed",
                                                              "reason", "acknowledged")],
                                 row_selectable="multi" if principal.may_post_events else False,
                                 sort_action="native", filter_action="native", page_size=50,
                                 style_cell={"textAlign": "left"},
                                 style_data_conditional=[{"if": {"filter_query": "{closed} = 'open'"},
                                                          "backgroundColor": "#fde0dd"}]),
            html.Button("Acknowledge selected", id="acknowledge", disabled=not principal.may_post_events),
            html.Div(id="acknowledge-message"),
            html.Div([
                html.H2("Quarantined records"),
                html.P("Stored records the live pipeline cannot use (an event its kind does not take, a reading "
                       "that is not a finite number or is dated outside 2000 to now, unreadable unit metadata): "
                       "kept in the store as they are, skipped by the estimator. Admins only."),
                dash_table.DataTable(id="quarantine-table", columns=[{"name": n, "id": n} for n in
                                                                     ("unit", "what", "kind", "time", "reason",
                                                                      "detail", "noticed")],
                                     sort_action="native", filter_action="native", page_size=20,
                                     style_cell={"textAlign": "left", "whiteSpace": "normal"}),
            ], id="quarantine", style={} if principal.is_admin else {"display": "none"}),
        ])  # fmt: skip

    def alarm_rows() -> list[dict]:
        rows = []
        for unit_id in sorted(store.units()):
            for alarm in book.alarms(store, unit_id):
                rows.append({"unit": unit_id, "alarm": alarm.kind, "what": alarm.label, "severity": alarm.severity,
                             "opened": _when(alarm.opened_us),
                             "opened_us": alarm.opened_us, "closed": "open" if alarm.open else _when(alarm.closed_us),
                             "reason": alarm.reason, "acknowledged": "yes" if alarm.acknowledged else ""})  # fmt: skip
        rows.sort(key=lambda row: (row["closed"] != "open", -row["opened_us"]))
        return rows

    @app.callback(Output("alarms-table", "data"), Input("tick", "n_intervals"), State("token", "data"))
    def alarms_data(_tick, token):
        return alarm_rows() if signed_in(token) is not None else []

    @app.callback(Output("quarantine-table", "data"), Input("tick", "n_intervals"), State("token", "data"))
    def quarantine_data(_tick, token):
        principal = signed_in(token)
        if principal is None or not principal.is_admin or pipeline is None:
            return []
        return [{"unit": item.unit_id, "what": item.what, "kind": item.kind,
                 "time": _when(item.time_us) if item.time_us > 0 else "", "reason": item.reason,
                 "detail": item.detail, "noticed": _when(item.noticed_us)}
                for item in reversed(pipeline.quarantine.items())]  # fmt: skip

    @app.callback(Output("acknowledge-message", "children"), Input("acknowledge", "n_clicks"),
                  State("alarms-table", "derived_virtual_data"), State("alarms-table", "derived_virtual_selected_rows"),
                  State("token", "data"), prevent_initial_call=True)  # fmt: skip
    def acknowledge(_clicks, rows, selected, token):
        principal = signed_in(token)
        if principal is None or not principal.may_post_events:
            return "acknowledging needs an operator or admin token"
        done = 0
        for index in selected or []:
            row = rows[index]
            record_event(store, pipeline, row["unit"], "alarm_ack", {"kind": row["alarm"],
                                                                     "time_us": row["opened_us"]},
                         datetime.fromtimestamp(clock(), tz=UTC))  # fmt: skip
            done += 1
        return f"{done} alarm(s) acknowledged"

    return app


PLOTLY_BUNDLE = "/_dash-component-suites/plotly/package_data/plotly.min.js"


def cache_plotly(app: Dash) -> None:
    """Plotly's 4.8 MB bundle, which Dash loads the first time a page shows a graph, is fetched ahead while
    the fleet view is open (a prefetch hint in the page) and kept by the browser for a day (revalidated by its
    ETag after that): Dash serves it without a version in its URL and so without cache headers, and every
    unit view downloaded it again."""
    from flask import request

    app.index_string = app.index_string.replace(
        "{%css%}", f'{{%css%}}\n        <link rel="prefetch" href="{PLOTLY_BUNDLE}" as="script">')

    @app.server.after_request
    def keep_bundle(response):
        if request.path == PLOTLY_BUNDLE and response.status_code == 200:
            response.cache_control.public = True
            response.cache_control.max_age = 86_400
            response.add_etag()
            response.make_conditional(request)
        return response


def mount_dashboard(api, store: Store, pipeline: LivePipeline | None = None, refresh_s: float = 2.0,
                    last_heard: Mapping[str, float] | None = None) -> Dash:  # fmt: skip
    """Serve the dashboard at / of the service's FastAPI app (its API stays at /api/v1)."""
    from a2wsgi import WSGIMiddleware

    dashboard = create_dashboard(store, pipeline, refresh_s, last_heard=last_heard)
    api.mount("/", WSGIMiddleware(dashboard.server))
    return dashboard


__all__ = ["create_dashboard", "mount_dashboard"]
