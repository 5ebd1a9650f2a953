"""Prometheus metrics of one app instance, and the ASGI middleware that records requests.

Each app gets its own CollectorRegistry rather than the process-global one, so that several apps
can live in one process (tests build many) without "Duplicated timeseries" errors.
"""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

API_ROUTES = frozenset({"/livez", "/readyz", "/metrics", "/api/sentiment", "/api/generate"})
UI_ROUTE = "ui"


class Metrics:
    """The app's counters and histograms; `render()` is the /metrics body."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "app_http_requests",
            "HTTP requests answered, by route (the Gradio UI counts as 'ui') and status.",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "app_http_request_duration_seconds",
            "Time from request to the end of the response, by route.",
            ["route"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
            registry=self.registry,
        )
        self.labels = Counter(
            "app_sentiment_predictions",
            "Texts classified by the local model, by predicted label.",
            ["label"],
            registry=self.registry,
        )
        self.errors = Counter(
            "app_errors",
            "Requests that failed, by kind (invalid_input, api_timeout, api_overloaded, ...).",
            ["kind"],
            registry=self.registry,
        )
        self.batch_size = Histogram(
            "app_classifier_batch_size",
            "Texts per forward pass of the micro-batcher.",
            buckets=(1, 2, 4, 8, 16, 32, 64),
            registry=self.registry,
        )
        self.ready = Gauge(
            "app_ready",
            "1 when the model is loaded and the canaries classify correctly at the last check.",
            registry=self.registry,
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)


class MetricsMiddleware:
    """Counts and times every HTTP request; routes outside the JSON API are the UI's."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        route = scope["path"] if scope["path"] in API_ROUTES else UI_ROUTE
        status = 500
        start = time.perf_counter()

        async def send_and_record(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_record)
        finally:
            self.metrics.requests.labels(route, scope["method"], str(status)).inc()
            self.metrics.latency.labels(route).observe(time.perf_counter() - start)
