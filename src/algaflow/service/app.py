"""The HTTP API, ``/api/v1`` (OpenAPI 3.1 at ``/api/v1/openapi.json``).

Every route but ``/health`` and ``/metrics`` needs a bearer token (service.auth): devices post frames and
events of their own unit; users read (role reader), post events (operator) and register units, issue tokens
and see quarantined records (admin). Requests larger than ``limits.max_request_bytes`` are refused with 413
(by their Content-Length, or while a chunked body streams in), more than ``limits.requests_per_second`` per
token (bursts of ``limits.burst``) with 429; every refusal is a 4xx with the body :class:`ErrorBody` (a
``detail`` that says what was wrong; for a request that is not valid, each problem), and every status a
route can answer is in the OpenAPI document.
"""

import contextlib
import json
import math
import threading
import time
from dataclasses import asdict
from datetime import datetime
from typing import Annotated, Any, Literal

import pandas as pd
from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from prometheus_client import generate_latest
from pydantic import BaseModel, ConfigDict, Field, field_validator
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

import algaflow
from algaflow.catalog import SENSORS, strain_names
from algaflow.catalog.events import NO_NUL
from algaflow.catalog.frames import RFC3339, Frame, FrameEvent, Time, UnitId
from algaflow.service.auth import MAX_LIFETIME_S, Principal, authenticate, issue_device_token, issue_user_token
from algaflow.service.config import Settings
from algaflow.service.events import EventRejectedError, record_event
from algaflow.service.export import export_unit
from algaflow.service.ingest import ForbiddenError, Ingestor
from algaflow.service.metrics import CONTENT_TYPE, registry_for
from algaflow.store import UnknownUnitError
from algaflow.store.base import to_time_us

API = "/api/v1"


# ---- request and response bodies -------------------------------------------------------------------------------
class Problem(BaseModel):
    where: str = Field(description="the input at fault, e.g. body.frames.9.readings.od750")
    problem: str


class ErrorBody(BaseModel):
    """Every refusal (4xx): what was wrong; for a request that is not valid, each problem too."""

    detail: str
    problems: list[Problem] | None = None


ERRORS = {
    400: "the request cannot be read (a Content-Length that is not a number)",
    401: "no valid bearer token (missing, unknown, revoked or expired)",
    403: "the token may not do this",
    404: "the unit is not registered",
    413: "the body, or its number of frames, is over the limit",
    422: "the request is not valid; each problem named",
    429: "too many requests for this token (Retry-After)",
}


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI responses for these refusals, each with :class:`ErrorBody` (the body limit's 400 and 413 apply to
    every request)."""
    return {code: {"model": ErrorBody, "description": ERRORS[code]} for code in sorted({400, 413, *codes})}


class FrameBatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    frames: list[Frame] = Field(min_length=1)


class IngestAck(BaseModel):
    """Every frame of the request is durably stored (new or already there); ``acknowledged`` lists, per unit,
    the seq ranges [first, last] that the agent may now delete."""

    new_frames: int
    new_readings: int
    new_events: int
    acknowledged: dict[str, list[list[int]]]


Label = Annotated[str, Field(max_length=200, pattern=NO_NUL)]
SENSOR_LIST = r"^({0})(,({0}))*$".format("|".join(SENSORS))  # comma-separated catalog names


class Site(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Label = ""
    latitude: float | None = Field(None, ge=-90, le=90, strict=True)
    longitude: float | None = Field(None, ge=-180, le=180, strict=True)


class UnitRegistration(BaseModel):
    """A unit and its metadata: strain (from the library), geometry, site and the sensors it carries."""

    model_config = ConfigDict(extra="forbid")
    unit_id: UnitId
    strain: str = Field("chlorella_vulgaris", json_schema_extra={"enum": strain_names()})
    geometry: Literal["tube", "flat_panel"] = "tube"
    volume_l: float = Field(80.0, gt=0, le=1e7, strict=True)
    light_path_m: float = Field(0.05, gt=0, le=10, strict=True)
    site: Site = Field(default_factory=Site)
    sensors: list[str] = Field(
        default_factory=list,
        max_length=len(SENSORS),
        json_schema_extra={"items": {"type": "string", "enum": list(SENSORS)}},
    )
    description: str = Field("", max_length=2000, pattern=NO_NUL)

    @field_validator("strain")
    @classmethod
    def _known_strain(cls, strain: str) -> str:
        if strain not in strain_names():
            raise ValueError(f"unknown strain {strain!r}; the library has {', '.join(strain_names())}")
        return strain

    @field_validator("sensors")
    @classmethod
    def _catalog(cls, sensors: list[str]) -> list[str]:
        unknown = sorted(set(sensors) - set(SENSORS))
        if unknown:
            raise ValueError(f"unknown sensor(s) {', '.join(unknown)}; the catalog has {', '.join(SENSORS)}")
        return sensors


Lifetime = Annotated[
    float | None, Field(gt=0, le=MAX_LIFETIME_S, strict=True, description="seconds (default: no expiry)")
]


class DeviceTokenRequest(BaseModel):
    """A token that writes one unit's frames and events."""

    model_config = ConfigDict(extra="forbid")
    kind: Literal["device"]
    unit_id: UnitId
    label: Label = ""
    expires_in_s: Lifetime = None


class UserTokenRequest(BaseModel):
    """A token for a person or a program that reads (and, by role, posts events or administers)."""

    model_config = ConfigDict(extra="forbid")
    kind: Literal["user"]
    role: Literal["reader", "operator", "admin"] = "reader"
    label: Label = ""
    expires_in_s: Lifetime = None


TokenRequest = Annotated[DeviceTokenRequest | UserTokenRequest, Field(discriminator="kind")]


class TokenIssued(BaseModel):
    token: str
    kind: str
    unit_id: str | None = None
    role: str | None = None


class EventPost(BaseModel):
    """An event for one unit (harvest done, a manual dry-weight sample with params.g_per_l ...)."""

    model_config = ConfigDict(extra="forbid")
    event: FrameEvent
    time: Time


# ---- limits -----------------------------------------------------------------------------------------------------
class BodyLimit:
    """ASGI middleware: 413 for a body over ``limit`` bytes, by its Content-Length or while it streams in."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        too_large = JSONResponse({"detail": f"request body over the limit of {self.limit} bytes"}, status_code=413)
        if declared is not None:
            try:
                if int(declared) > self.limit:
                    await too_large(scope, receive, send)
                    return
            except ValueError:
                await JSONResponse({"detail": "Content-Length is not a number"}, status_code=400)(scope, receive,
                                                                                                 send)  # fmt: skip
                return
        received, exceeded, started = 0, False, False

        async def limited() -> Message:
            nonlocal received, exceeded
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    exceeded = True
                    raise _BodyTooLargeError
            return message

        async def answer(message: Message) -> None:
            nonlocal started
            if exceeded:  # the app's own answer to a body it could not read (400) gives way to the 413
                return
            started = started or message["type"] == "http.response.start"
            await send(message)

        with contextlib.suppress(_BodyTooLargeError):
            await self.app(scope, limited, answer)
        if exceeded and not started:
            await too_large(scope, receive, send)


class _BodyTooLargeError(Exception):
    pass


class RateLimiter:
    """Token bucket per key: ``rate`` per second, up to ``burst`` at once."""

    def __init__(self, rate: float, burst: int) -> None:
        self.rate, self.burst = rate, burst
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def allow(self, key: str) -> float:
        """0 when allowed, else the seconds to wait."""
        now = time.monotonic()
        with self._lock:
            level, since = self._buckets.get(key, (float(self.burst), now))
            level = min(float(self.burst), level + (now - since) * self.rate)
            if level >= 1.0:
                self._buckets[key] = (level - 1.0, now)
                return 0.0
            self._buckets[key] = (level, now)
            return (1.0 - level) / self.rate


# ---- the app ------------------------------------------------------------------------------------------------------
def _time_us(value: str | None) -> int | None:
    """A query's time (RFC 3339 with its zone, checked by the query's pattern) in µs since the epoch."""
    if value is None:
        return None
    try:
        return to_time_us(datetime.fromisoformat(value.replace("z", "Z").replace("t", "T")))
    except (ValueError, OverflowError) as error:
        raise HTTPException(422, f"query time {value[:40]!r} is not a time: {error}") from None


def _iso(time_us: pd.Series) -> list[str]:
    return pd.to_datetime(time_us, unit="us", utc=True).map(lambda t: t.isoformat()).tolist()


def _records(table: pd.DataFrame) -> dict[str, list]:
    """Columns as JSON lists, times as ISO 8601, NaN as null."""
    out: dict[str, list] = {}
    for name in table.columns:
        if name == "time_us":
            out["time"] = _iso(table[name])
            continue
        values = table[name].tolist()
        out[name] = [None if isinstance(v, float) and not math.isfinite(v) else v for v in values]
    return out


def query_time(description: str) -> Any:
    """A time in a query: RFC 3339 text with its zone, checked by the pattern and documented as date-time."""
    return Annotated[str | None, Query(description=description, pattern=RFC3339.pattern,
                                       json_schema_extra={"format": "date-time"})]  # fmt: skip


def _shown_params(params: Any) -> dict:
    """Stored event params as the API shows them: a flat object as it is; anything else (a record written before
    the event table was enforced at the edge) as its JSON text, cut at 500 characters, so it cannot break the
    answer."""
    if isinstance(params, dict) and all(isinstance(v, int | float | str | None) for v in params.values()):
        return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in params.items()}
    try:
        text = json.dumps(params, default=str)
    except (TypeError, ValueError, RecursionError):
        text = repr(type(params))
    return {"unreadable": text[:500]}


def create_app(settings: Settings, ingestor: Ingestor) -> FastAPI:
    """The FastAPI app over ``ingestor``'s store and pipeline."""
    store = ingestor.store
    limiter = RateLimiter(settings.limits.requests_per_second, settings.limits.burst)
    registry = registry_for(ingestor)
    app = FastAPI(title="algaflow", version=algaflow.__version__, openapi_url=f"{API}/openapi.json",
                  docs_url=f"{API}/docs", redoc_url=None,
                  description="Telemetry, estimates and decisions of algae photobioreactors.")  # fmt: skip
    app.add_middleware(BodyLimit, limit=settings.limits.max_request_bytes)
    bearer = HTTPBearer(auto_error=False, description="a device or user token (algaflow admin issue-token)")

    @app.exception_handler(StarletteHTTPException)
    async def _refused(request: Request, error: StarletteHTTPException) -> JSONResponse:
        """Every HTTP refusal as :class:`ErrorBody`; a 405 lists every method the path takes (Allow), not only
        those of the first route that matched it."""
        headers, detail = dict(error.headers or {}), str(error.detail)
        if error.status_code == 400:  # FastAPI could not parse the body at all
            ingestor.counters.reject("http", "unreadable")
            detail = f"the body cannot be read as JSON (invalid UTF-8, or nested too deep): {detail}"
        if error.status_code == 405:
            allowed = set()
            for route in app.router.routes:
                if isinstance(route, Route) and route.matches(request.scope)[0] != Match.NONE:
                    allowed |= set(route.methods or ())
            headers["Allow"] = ", ".join(sorted(allowed))
        return JSONResponse({"detail": detail}, status_code=error.status_code, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, error: RequestValidationError) -> JSONResponse:
        problems = [{"where": ".".join(str(part) for part in e["loc"]), "problem": e["msg"]} for e in error.errors()]
        ingestor.counters.reject("http", "invalid")
        return JSONResponse({"detail": "the request is not valid: " + "; ".join(f"{p['where']}: {p['problem']}"
                                                                                   for p in problems[:10]),
                             "problems": problems[:100]}, status_code=422)  # fmt: skip

    def principal(request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None,
                                                           Depends(bearer)]) -> Principal:  # fmt: skip
        found = authenticate(store, credentials.credentials if credentials else None)
        if found is None:
            raise HTTPException(401, "a valid bearer token is needed (Authorization: Bearer <token>)",
                                headers={"WWW-Authenticate": "Bearer"})  # fmt: skip
        wait = limiter.allow(credentials.credentials)
        if wait > 0:
            raise HTTPException(429, f"too many requests for this token; retry in {wait:.2f} s",
                                headers={"Retry-After": str(max(1, math.ceil(wait)))})  # fmt: skip
        return found

    Caller = Annotated[Principal, Depends(principal)]

    def reader(caller: Caller) -> Principal:
        if not caller.may_read:
            raise HTTPException(403, "reading needs a user token; device tokens only write")
        return caller

    def admin(caller: Caller) -> Principal:
        if not caller.is_admin:
            raise HTTPException(403, "this needs a user token with the admin role")
        return caller

    def known_unit(unit_id: str) -> str:
        if store.unit(unit_id) is None:
            raise HTTPException(404, f"unit {unit_id!r} is not registered")
        return unit_id

    Reader = Annotated[Principal, Depends(reader)]
    Admin = Annotated[Principal, Depends(admin)]
    Unit = Annotated[str, Depends(known_unit)]
    Start = query_time("from this time (inclusive; RFC 3339 with its zone)")
    End = query_time("to this time (exclusive; RFC 3339 with its zone)")

    READ, UNIT = errors(401, 403, 422, 429), errors(401, 403, 404, 422, 429)

    @app.get(f"{API}/health", responses=errors())
    def health() -> dict[str, Any]:
        """Up, with what came in, what was refused, the live pipeline's backlog (batches and readings waiting),
        whether it is still replaying the store after a start, and how many records it quarantined."""
        counters = ingestor.counters
        pipeline = ingestor.pipeline
        return {"status": "ok", "store": store.name, "frames": counters.frames, "readings": counters.readings,
                "rejected_http": counters.rejected_http, "rejected_mqtt": counters.rejected_mqtt,
                "pipeline_backlog": pipeline.backlog if pipeline else 0,
                "pipeline_backlog_readings": pipeline.queued_readings if pipeline else 0,
                "pipeline_restoring": bool(pipeline and pipeline.restoring),
                "quarantined": pipeline.quarantine.total if pipeline else 0,
                "uptime_s": round(time.time() - ingestor.started, 1)}  # fmt: skip

    @app.get(f"{API}/metrics", response_class=PlainTextResponse,
             responses={200: {"content": {CONTENT_TYPE.split(";")[0]: {"schema": {"type": "string"}}},
                              "description": "Prometheus text format"}, **errors()})  # fmt: skip
    def metrics() -> Response:
        """The counters of ``/health`` in Prometheus' text format, for a scraper."""
        return Response(generate_latest(registry), media_type=CONTENT_TYPE)

    @app.post(f"{API}/frames", response_model=IngestAck, responses=errors(401, 403, 404, 422, 429))
    def post_frames(batch: FrameBatch, caller: Caller) -> IngestAck:
        """Store a batch of frames whole (all or nothing) and acknowledge them."""
        if len(batch.frames) > settings.limits.max_frames_per_request:
            ingestor.counters.reject("http", "too_many_frames")
            raise HTTPException(413, f"{len(batch.frames)} frames in one request; the limit is "
                                     f"{settings.limits.max_frames_per_request}")  # fmt: skip
        try:
            stored, acknowledged = ingestor.ingest(caller, batch.frames)
        except ForbiddenError as error:
            ingestor.counters.reject("http", "forbidden")
            raise HTTPException(403, str(error)) from error
        except UnknownUnitError as error:
            ingestor.counters.reject("http", "unknown_unit")
            raise HTTPException(404, f"{error.args[0]}; register the unit first") from error
        return IngestAck(new_frames=stored.frames, new_readings=stored.readings, new_events=stored.events,
                         acknowledged=acknowledged)  # fmt: skip

    @app.post(f"{API}/units", status_code=201, responses=READ)
    def register_unit(unit: UnitRegistration, caller: Admin) -> dict[str, Any]:
        """Register a unit (or replace its metadata)."""
        metadata = unit.model_dump(exclude={"unit_id"})
        store.register_unit(unit.unit_id, metadata)
        return {"unit_id": unit.unit_id, **metadata}

    @app.get(f"{API}/units", responses=errors(401, 403, 429))
    def list_units(caller: Reader) -> dict[str, dict]:
        return store.units()

    @app.get(f"{API}/units/{{unit_id}}/readings", responses=UNIT)
    def get_readings(unit_id: Unit, caller: Reader, start: Start = None, end: End = None,
                     sensors: Annotated[str | None, Query(description="comma-separated catalog names",
                                                          pattern=SENSOR_LIST)] = None,
                     every_s: Annotated[int | None, Query(gt=0, le=31 * 86400, description="bucket width (s): "
                                                          "mean, min, max, count per bucket")] = None,
                     ) -> dict[str, list]:  # fmt: skip
        names = None if sensors is None else sensors.split(",")
        try:
            table = store.readings(unit_id, names, _time_us(start), _time_us(end), every_s)
        except ValueError as error:
            raise HTTPException(422, str(error)) from error
        return _records(table)

    @app.get(f"{API}/units/{{unit_id}}/estimates", responses=UNIT)
    def get_estimates(unit_id: Unit, caller: Reader, start: Start = None, end: End = None) -> dict[str, list]:
        return _records(store.estimates(unit_id, _time_us(start), _time_us(end)))

    @app.get(f"{API}/units/{{unit_id}}/decisions", responses=UNIT)
    def get_decisions(unit_id: Unit, caller: Reader, start: Start = None, end: End = None) -> dict[str, list]:
        return _records(store.decisions(unit_id, _time_us(start), _time_us(end)))

    @app.get(f"{API}/units/{{unit_id}}/events", responses=UNIT)
    def get_events(unit_id: Unit, caller: Reader, start: Start = None, end: End = None) -> dict[str, list]:
        table = store.events(unit_id, _time_us(start), _time_us(end))
        table["params"] = table["params"].map(_shown_params)
        return _records(table)

    @app.post(f"{API}/units/{{unit_id}}/events", status_code=201, responses=UNIT)
    def post_event(unit_id: Unit, posted: EventPost, caller: Caller) -> dict[str, Any]:
        """Record an event (harvest done, a manual dry-weight sample: kind dry_weight_sample with
        params.g_per_l, also stored as a ``dry_weight`` reading)."""
        if not (caller.may_post_events or caller.may_write(unit_id)):
            raise HTTPException(403, "posting events needs an operator or admin token, or the unit's device token")
        try:
            new = record_event(store, ingestor.pipeline, unit_id, posted.event.kind, dict(posted.event.params),
                               posted.time)  # fmt: skip
        except EventRejectedError as error:
            raise HTTPException(422, f"{error.field}: {error.message}") from None
        return {"stored": new, "unit_id": unit_id, "kind": posted.event.kind}

    @app.post(f"{API}/tokens", status_code=201, response_model=TokenIssued, responses=UNIT)
    def post_token(request: TokenRequest, caller: Admin) -> TokenIssued:
        """Issue a token (shown once; only its hash is kept)."""
        if isinstance(request, DeviceTokenRequest):
            known_unit(request.unit_id)
            return TokenIssued(token=issue_device_token(store, request.unit_id, request.label, request.expires_in_s),
                               kind="device", unit_id=request.unit_id)  # fmt: skip
        return TokenIssued(token=issue_user_token(store, request.role, request.label, request.expires_in_s),
                           kind="user", role=request.role)  # fmt: skip

    @app.get(f"{API}/quarantine", responses=errors(401, 403, 422, 429))
    def get_quarantine(caller: Admin, unit_id: Annotated[str | None, Query(max_length=64)] = None
                       ) -> dict[str, Any]:  # fmt: skip
        """Stored records the live pipeline set aside (service.quarantine): total, and the newest items."""
        pipeline = ingestor.pipeline
        if pipeline is None:
            return {"total": 0, "items": []}
        items = [asdict(item) for item in pipeline.quarantine.items(unit_id)]
        return {"total": pipeline.quarantine.total, "items": items}

    @app.get(f"{API}/units/{{unit_id}}/export", response_class=Response,
             responses={200: {"content": {"application/zip": {"schema": {"type": "string", "format": "binary"}}},
                              "description": "a zip: telemetry, events, estimates, decisions, manifest.json"},
                        **UNIT})  # fmt: skip
    def export(unit_id: Unit, caller: Reader, start: Start = None, end: End = None,
               format: Annotated[Literal["parquet", "csv"], Query()] = "parquet") -> Response:  # fmt: skip
        """One unit's experiment as a zip: telemetry, events, estimates, decisions and a manifest."""
        payload = export_unit(store, unit_id, _time_us(start), _time_us(end), format)
        return Response(payload, media_type="application/zip",
                        headers={"Content-Disposition": f'attachment; filename="{unit_id}.zip"'})  # fmt: skip

    return app
