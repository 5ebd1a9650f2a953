"""The JSON API: probes, the two products, and metrics.

Errors share one shape, `{"error": <kind>, "detail": <message>}`, where kind is the same word the
`app_errors` metric counts: a client can branch on it, a person can read the detail.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST

from app.errors import AppError
from app.services import Services
from app.validation import InputError, parse_generate, parse_sentiment


def build_router(services: Services) -> APIRouter:
    router = APIRouter()

    @router.get("/livez")
    async def livez() -> dict[str, str]:
        """The process answers; says nothing about the model (that is /readyz)."""
        return {"status": "alive"}

    @router.get("/readyz")
    async def readyz() -> JSONResponse:
        readiness = await services.model.readiness()
        services.metrics.ready.set(1 if readiness.ready else 0)
        body: dict[str, str | None] = {
            "status": "ready" if readiness.ready else "not ready",
            "model": services.model.model,
            "model_version": services.model.version,
        }
        if not readiness.ready:
            body["reason"] = readiness.reason
        return JSONResponse(body, status_code=200 if readiness.ready else 503)

    @router.post("/api/sentiment")
    async def sentiment(request: Request) -> JSONResponse:
        body = await read_body(request, services.settings.max_body_bytes)
        parsed = parse_sentiment(body, services.limits)
        results = []
        for prediction in await services.model.classify(parsed.texts):
            services.metrics.labels.labels(prediction.label).inc()
            results.append({"label": prediction.label, "score": prediction.score})
        return JSONResponse({"results": results} if parsed.batch else results[0])

    @router.post("/api/generate")
    async def generate(request: Request) -> JSONResponse:
        body = await read_body(request, services.settings.max_body_bytes)
        prompt = parse_generate(body, services.limits)
        return JSONResponse({"text": await services.api.complete(prompt)})

    @router.get("/metrics")
    async def metrics() -> Response:
        return Response(services.metrics.render(), media_type=CONTENT_TYPE_LATEST)

    return router


def error_handler(services: Services) -> Callable[[Request, Exception], Awaitable[Response]]:
    """The answer to any AppError a route raises: its status, kind and message, counted."""

    async def answer(request: Request, error: Exception) -> Response:
        assert isinstance(error, AppError)
        services.count_error(error.kind)
        return JSONResponse({"error": error.kind, "detail": str(error)}, status_code=error.status)

    return answer


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refused with 413 as soon as it is known to exceed `limit` bytes."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise InputError(f"the body is larger than {limit} bytes", status=413)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise InputError(f"the body is larger than {limit} bytes", status=413)
        chunks.append(chunk)
    return b"".join(chunks)
