"""Prometheus metrics of one service instance, on its own registry (two apps in a process never mix counts).

Requests are labelled by route *template* (an unknown path is ``other``), so a scanner probing random URLs
cannot grow the label set without bound. A client that went away before any answer is counted with status
499 (nginx's "client closed request"), so disconnects are visible and never look like server errors.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from logsieve.serving.limits import ASGIApp, Message, Receive, Scope, Send

CLIENT_CLOSED = 499
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class ServiceMetrics:
    """The counters the service keeps; ``render`` gives the text a Prometheus server scrapes."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter("logsieve_http_requests", "HTTP requests by route, method and status.",
                                ["route", "method", "status"], registry=r)  # fmt: skip
        self.latency = Histogram("logsieve_http_request_duration_seconds", "Time to answer a request, by route.",
                                 ["route"], buckets=LATENCY_BUCKETS, registry=r)  # fmt: skip
        self.sessions = Counter("logsieve_sessions_scored", "Sessions scored, by input kind.", ["input"], registry=r)
        self.alerts = Counter("logsieve_alerts", "Alerts: sessions scored anomalous or holding an event never seen "
                              "in training.", registry=r)  # fmt: skip
        self.lines = Counter("logsieve_lines_received", "Raw log lines received.", registry=r)
        self.rejected = Counter("logsieve_lines_rejected", "Raw log lines rejected, by reason.", ["reason"],
                                registry=r)  # fmt: skip
        self.ready = Gauge("logsieve_bundle_loaded", "1 when a model bundle is loaded.", registry=r)

    def render(self) -> bytes:
        return generate_latest(self.registry)


class MetricsMiddleware:
    """Count and time every HTTP request, including those a later layer refuses (413) or that fail (500)."""

    def __init__(self, app: ASGIApp, metrics: ServiceMetrics, routes: Iterable[str]) -> None:
        self.app, self.metrics, self.routes = app, metrics, frozenset(routes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        route = scope["path"] if scope["path"] in self.routes else "other"
        status = CLIENT_CLOSED
        start = time.perf_counter()
        started = False

        async def watch(message: Message) -> None:
            nonlocal status, started
            if message["type"] == "http.response.start":
                status, started = message["status"], True
            await send(message)

        try:
            await self.app(scope, receive, watch)
        except BaseException:
            if not started:  # Starlette's outermost layer will answer 500
                status = 500
            raise
        finally:
            self.metrics.requests.labels(route, scope["method"], str(status)).inc()
            self.metrics.latency.labels(route).observe(time.perf_counter() - start)
