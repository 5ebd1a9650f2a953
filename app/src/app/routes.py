"""The JSON API: probes, the two products, and metrics.

Errors share one shape, `{"error": <kind>, "detail": <message>}`, where kind is the same word the
`app_errors` metric counts: a client can branch on it, a person can read the detail.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST

from app.inference_api import ApiError
from app.local_model import ModelUnavailable
from app.services import Services
from app.validation import InputError, parse_generate, parse_sentiment


def build_router(services: Services) -> APIRouter:
    router = APIRouter()

    def error(status: int, kind: str, detail: str) -> JSONResponse:
        services.count_error(kind)
        return JSONResponse({"error": kind, "detail": detail}, status_code=status)

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
        try:
            body = await read_body(request, services.settings.max_body_bytes)
            parsed = parse_sentiment(body, services.limits)
        except InputError as problem:
            return error(problem.status, problem.kind, str(problem))
        try:
            predictions = await services.model.classify(parsed.texts)
        except ModelUnavailable as problem:
            return error(503, "model_unavailable", str(problem))
        results = []
        for prediction in predictions:
            services.metrics.labels.labels(prediction.label).inc()
            results.append({"label": prediction.label, "score": prediction.score})
        return JSONResponse({"results": results} if parsed.batch else results[0])

    @router.post("/api/generate")
    async def generate(request: Request) -> JSONResponse:
        try:
            body = await read_body(request, services.settings.max_body_bytes)
            prompt = parse_generate(body, services.limits)
        except InputError as problem:
            return error(problem.status, problem.kind, str(problem))
        try:
            text = await services.api.complete(prompt)
        except ApiError as problem:
            return error(problem.status, problem.kind, str(problem))
        return JSONResponse({"text": text})

    @router.get("/metrics")
    async def metrics() -> Response:
        return Response(services.metrics.render(), media_type=CONTENT_TYPE_LATEST)

    return router


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
