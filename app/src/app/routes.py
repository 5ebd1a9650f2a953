"""The JSON API: probes, the two products, and metrics, declared in the app's OpenAPI schema.

Errors share one shape, `{"error": <kind>, "detail": <message>}`, where kind is the same word the
`app_errors` metric counts: a client can branch on it, a person can read the detail. Every route
also answers the methods it does not take, with 405 and `Allow`: the UI mounted at "/" would
otherwise answer them with a 404 that hides the route.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute
from prometheus_client import CONTENT_TYPE_LATEST

from app.docs import build_docs_router
from app.errors import AppError, MethodNotAllowed
from app.late_ui import UiState
from app.schemas import (
    Alive,
    ErrorBody,
    Generated,
    NotReady,
    Prediction,
    Predictions,
    Ready,
    errors,
    generate_request_schema,
    json_body,
    sentiment_request_schema,
)
from app.services import Services
from app.validation import InputError, parse_generate, parse_sentiment

# Every method of HTTP (RFC 9110) and QUERY (its safe method with a body) but CONNECT.
HTTP_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "QUERY")


def add_routes(router: APIRouter, services: Services, ui_state: Callable[[], UiState]) -> None:
    """Declare the JSON routes on `router`; `ui_state()` says how far the UI is (app.late_ui).

    The app declares them on its own router rather than including a router of their own:
    FastAPI matches an included router's routes twice per request (to pick the router, then
    to handle), a fifth of the app's own CPU time for each /api/sentiment.
    """

    @router.get("/livez", response_model=Alive)
    async def livez() -> Alive:
        """The process answers; says nothing about the model (that is /readyz)."""
        return Alive(status="alive")

    @router.get(
        "/readyz",
        response_model=Ready,
        responses={503: {"model": NotReady, "description": "not ready; `reason` says why"}},
    )
    async def readyz() -> Ready | JSONResponse:
        """Ready when the model is loaded and classifies the canary sentences right.

        `ui` says whether the UI is built yet; a UI request before that waits for it.
        """
        readiness = await services.model.readiness()
        services.metrics.ready.set(1 if readiness.ready else 0)
        model, version = services.model.model, services.model.version
        if readiness.ready:
            return Ready(status="ready", model=model, model_version=version, ui=ui_state())
        answer = NotReady(
            status="not ready",
            reason=readiness.reason or "unknown",
            model=model,
            model_version=version,
        )
        return JSONResponse(answer.model_dump(), status_code=503)

    @router.post(
        "/api/sentiment",
        response_model=Prediction | Predictions,
        responses=errors(400, 413, 422, 503),
        openapi_extra=json_body(sentiment_request_schema(services.limits), required=True),
    )
    async def sentiment(request: Request) -> Prediction | Predictions:
        """Label one text (`{"text"}`) or several in order (`{"texts"}`) with the local model."""
        body = await read_body(request, services.settings.max_body_bytes)
        parsed = parse_sentiment(body, services.limits)
        results = []
        for prediction in await services.model.classify(parsed.texts):
            services.metrics.labels.labels(prediction.label).inc()
            results.append(Prediction(label=prediction.label, score=prediction.score))
        return Predictions(results=results) if parsed.batch else results[0]

    @router.post(
        "/api/generate",
        response_model=Generated,
        responses=errors(400, 413, 422, 502, 503, 504),
        openapi_extra=json_body(generate_request_schema(services.limits), required=False),
    )
    async def generate(request: Request) -> Generated:
        """The chat model's answer to `prompt`; without one, a positive thought."""
        body = await read_body(request, services.settings.max_body_bytes)
        prompt = parse_generate(body, services.limits)
        return Generated(text=await services.api.complete(prompt))

    @router.get(
        "/metrics",
        response_class=Response,
        responses={200: {"content": {CONTENT_TYPE_LATEST: {"schema": {"type": "string"}}}}},
    )
    async def metrics() -> Response:
        """Prometheus text format."""
        return Response(services.metrics.render(), media_type=CONTENT_TYPE_LATEST)

    refuse_other_methods(router)
    router.include_router(build_docs_router())


def refuse_other_methods(router: APIRouter) -> None:
    """Give each path of `router` a hidden route that answers every other method with 405."""
    allowed: dict[str, set[str]] = {}
    for route in router.routes:
        if isinstance(route, APIRoute):
            allowed.setdefault(route.path, set()).update(route.methods or ())
    for path, methods in allowed.items():
        others = [method for method in HTTP_METHODS if method not in methods]
        router.add_api_route(
            path, _refusal(path, sorted(methods)), methods=others, include_in_schema=False
        )


def _refusal(path: str, allowed: list[str]) -> Callable[[Request], Awaitable[Response]]:
    async def refuse(request: Request) -> Response:
        raise MethodNotAllowed(request.method, path, allowed)

    return refuse


def error_handler(services: Services) -> Callable[[Request, Exception], Awaitable[Response]]:
    """The answer to any AppError a route raises: its status, kind and message, counted."""

    async def answer(request: Request, error: Exception) -> Response:
        assert isinstance(error, AppError)
        services.count_error(error.kind)
        body = ErrorBody(error=error.kind, detail=str(error))
        return JSONResponse(body.model_dump(), status_code=error.status, headers=error.headers)

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
