"""The HTTP service behind ``logsieve serve``: score sessions or raw HDFS lines with a model bundle.

FastAPI on uvicorn. Every client mistake is a 4xx whose ``detail`` names the field or the limit (400 bad JSON,
413 body too large, 422 invalid or over a count limit); 5xx means a server problem only (503: no bundle yet).
Scoring runs in FastAPI's thread pool, so /healthz, /readyz and /metrics answer while a big request scores.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass, field
from typing import Any

import polars as pl
import uvicorn
from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response

from logsieve import __version__
from logsieve.errors import LogsieveError
from logsieve.parsing.lines import RejectStats
from logsieve.serving.bundle import Bundle
from logsieve.serving.explain import explain_sessions
from logsieve.serving.limits import BodyLimitMiddleware, Limits, too_many_events, too_many_sessions
from logsieve.serving.metrics import MetricsMiddleware, ServiceMetrics
from logsieve.serving.rawlines import LineSessionizer
from logsieve.serving.schemas import ErrorBody, ScoreRequest, ScoreResponse
from logsieve.serving.scoring import ALERT, score_table

BACKLOG = 2048  # uvicorn's default
MAX_LISTED_ERRORS = 100  # a 422 lists at most this many problems (a 10,000-session body could have more)
_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorBody, "description": "body is not JSON"},
    413: {"model": ErrorBody, "description": "body over --max-body-bytes"},
    422: {"model": ErrorBody, "description": "a field is invalid, or a count is over --max-sessions/--max-events"},
    503: {"model": ErrorBody, "description": "no model bundle loaded yet"},
}


@dataclass
class Service:
    """What the routes share: the bundle (None until loaded), its line sessionizer, limits and metrics."""

    limits: Limits
    metrics: ServiceMetrics = field(default_factory=ServiceMetrics)
    bundle: Bundle | None = None
    sessionizer: LineSessionizer | None = None

    def load(self, bundle: Bundle) -> None:
        self.sessionizer = LineSessionizer(bundle)
        self.bundle = bundle
        self.metrics.ready.set(1)


def create_app(bundle: Bundle | None, limits: Limits | None = None) -> FastAPI:
    """The ASGI app; ``bundle=None`` starts not ready (``app.state.service.load(bundle)`` makes it ready)."""
    service = Service(limits or Limits())
    if bundle is not None:
        service.load(bundle)
    app = FastAPI(
        title="logsieve",
        version=__version__,
        description="Score HDFS block sessions (or raw log lines) for anomalies with a trained logsieve bundle.",
    )
    app.state.service = service

    @app.get("/healthz", summary="The process is alive")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", summary="A model bundle is loaded", responses={503: _ERRORS[503]})
    async def readyz() -> Any:
        if service.bundle is None:
            return JSONResponse({"detail": "no model bundle loaded"}, status_code=503)
        return {"status": "ready", "model": _model_info(service.bundle)}

    @app.get("/metrics", summary="Prometheus metrics", response_class=Response)
    async def metrics() -> Response:
        return Response(service.metrics.render(), media_type=service.metrics.content_type)

    @app.post("/v1/score", summary="Score sessions or raw lines", response_model=ScoreResponse, responses=_ERRORS)
    def score(body: ScoreRequest) -> Any:
        return JSONResponse(score_request(service, body))

    app.add_exception_handler(RequestValidationError, _invalid_request)  # type: ignore[arg-type]
    app.add_exception_handler(LogsieveError, _user_error)  # type: ignore[arg-type]
    app.add_middleware(BodyLimitMiddleware, max_bytes=service.limits.max_body_bytes)
    app.add_middleware(MetricsMiddleware, metrics=service.metrics, routes=[r.path for r in app.routes])  # type: ignore[attr-defined]
    return app


def score_request(service: Service, req: ScoreRequest) -> dict[str, Any]:
    """The response body of /v1/score (a plain dict: JSON-encoding 1,000 sessions without re-validation)."""
    bundle = service.bundle
    if bundle is None or service.sessionizer is None:
        raise HTTPException(503, "no model bundle loaded")
    stats: RejectStats | None = None
    if req.sessions is not None:
        ids = [s.id for s in req.sessions]
        problem = too_many_sessions(len(ids), service.limits, "sessions") or too_many_events(
            [len(s.events) for s in req.sessions], ids, service.limits, "sessions[{i}].events"
        )
        table = pl.DataFrame({"session_id": ids, "events": [s.events for s in req.sessions]},
                             schema={"session_id": pl.String, "events": pl.List(pl.String)})  # fmt: skip
    else:
        table, stats = service.sessionizer(list(req.lines or []))
        problem = too_many_sessions(table.height, service.limits, "lines") or too_many_events(
            table["events"].list.len().to_list(), table["session_id"].to_list(), service.limits, "lines"
        )
    if problem:
        raise HTTPException(422, problem)
    sessions = _results(bundle, table, req.explain)
    _count(service.metrics, sessions, stats, "sessions" if stats is None else "lines")
    out: dict[str, Any] = {"model": _model_info(bundle), "sessions": sessions}
    if stats is not None:
        out["lines"] = {"total": stats.lines, "rejected": stats.rejected, "by_reason": dict(stats.counts),
                        "unblocked": stats.unblocked}  # fmt: skip
    return out


def _results(bundle: Bundle, table: pl.DataFrame, explain: bool) -> list[dict[str, Any]]:
    """Scored rows; with ``explain`` the alerts (only: each costs a few rescorings) get an explanation."""
    if table.height == 0:
        return []
    scored = score_table(bundle, table)
    iso = "%Y-%m-%dT%H:%M:%S%.f"
    rows = scored.select(
        pl.col("session_id").alias("id"), "score", "verdict", "threshold", "events", "unknown_events", "new_event",
        pl.col("start_time", "end_time").dt.to_string(iso), "first_line", "last_line",
    ).to_dicts()  # fmt: skip
    if explain:
        alert = scored.select(ALERT).to_series()
        whys = explain_sessions(bundle, table.filter(alert), scored["score"].filter(alert).to_numpy())
        for row in rows:
            row["explanation"] = None
        for i, why in zip(alert.arg_true().to_list(), whys, strict=True):
            rows[i]["explanation"] = {k: why[k] for k in ("weighing", "nearest_normal", "decision_path")}
    return rows


def _count(metrics: ServiceMetrics, sessions: list[dict], stats: RejectStats | None, kind: str) -> None:
    metrics.sessions.labels(kind).inc(len(sessions))
    metrics.alerts.inc(sum(s["verdict"] == "anomaly" or s["new_event"] for s in sessions))
    if stats is not None:
        metrics.lines.inc(stats.lines)
        for reason, n in stats.counts.items():
            metrics.rejected.labels(reason).inc(n)


def _model_info(bundle: Bundle) -> dict[str, Any]:
    return {"kind": bundle.kind, "name": bundle.name, "threshold": bundle.threshold,
            "templates": bundle.templates, "vocabulary": len(bundle.vocabulary)}  # fmt: skip


def _field(loc: tuple[Any, ...]) -> str:
    """("body", "sessions", 0, "events") -> "sessions[0].events"; the body itself is "body"."""
    parts = list(loc[1:] if loc and loc[0] == "body" else loc)
    out = ""
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out or "body"


async def _invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
    """400 for a body that is not JSON; 422 naming each invalid field otherwise (never echoing the input)."""
    errors = exc.errors()
    bad_json = next((e for e in errors if e.get("type") == "json_invalid"), None)
    if bad_json is not None:
        where = bad_json["loc"][-1] if len(bad_json["loc"]) > 1 else "?"
        reason = (bad_json.get("ctx") or {}).get("error", "invalid JSON")
        return JSONResponse({"detail": f"body is not valid JSON ({reason} at character {where})"}, status_code=400)
    items = [{"field": _field(tuple(e["loc"])), "message": e["msg"], "type": e["type"]} for e in errors]
    detail = "; ".join(f"{i['field']}: {i['message']}" for i in items[:3])
    if len(items) > 3:
        detail += f" (and {len(items) - 3} more)"
    return JSONResponse({"detail": detail, "errors": items[:MAX_LISTED_ERRORS]}, status_code=422)


async def _user_error(request: Request, exc: LogsieveError) -> JSONResponse:
    return JSONResponse({"detail": str(exc)}, status_code=422)


# --- running it --------------------------------------------------------------------------------------


def bind(host: str = "127.0.0.1", port: int = 8000) -> socket.socket:
    """A listening socket, or one LogsieveError (port taken, unknown host) instead of uvicorn's exit. It listens
    at once, so clients that connect while the app starts wait in the backlog instead of being refused."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        sock = socket.socket(family, kind, proto)
    except (OSError, UnicodeError) as exc:
        raise LogsieveError(f"cannot listen on {host}:{port} ({exc})") from None
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(BACKLOG)
    except OSError as exc:
        sock.close()
        raise LogsieveError(f"cannot listen on {host}:{port} ({exc.strerror or exc})") from None
    return sock


def make_server(app: FastAPI, log_level: str = "warning") -> uvicorn.Server:
    """uvicorn without access log (the metrics count requests) and without its Server header."""
    config = uvicorn.Config(app, log_level=log_level, access_log=False, server_header=False,
                            timeout_graceful_shutdown=10)  # fmt: skip
    return uvicorn.Server(config)


def serve(bundle: Bundle, sock: socket.socket, limits: Limits | None = None, log_level: str = "warning") -> None:
    """Serve on a socket from ``bind`` until interrupted (Ctrl-C / SIGTERM shut down gracefully)."""
    make_server(create_app(bundle, limits), log_level).run(sockets=[sock])
