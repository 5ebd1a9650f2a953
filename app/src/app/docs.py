"""The app's OpenAPI schema at /openapi.json and interactive docs at /docs, served by the app.

The schema covers the app's own routes only: the UI is mounted at "/", and the mount (Gradio's
internal routes) is no part of it.

FastAPI's default page loads Swagger UI's script, stylesheet and icon from a CDN: on a course VM
without internet the page stays blank, and elsewhere every visit tells an outside host about it.
The `fastapi-offline` package ships those files; the app serves them from its own routes.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from fastapi import APIRouter, HTTPException, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse

ASSETS = Path(str(files("fastapi_offline") / "static"))
ASSET_NAMES = ("swagger-ui-bundle.js", "swagger-ui.css", "favicon.png")
OPENAPI_URL = "/openapi.json"


def build_docs_router() -> APIRouter:
    """`/openapi.json`, `/docs` (Swagger UI for it) and `/docs/assets/<name>` (its files)."""
    router = APIRouter(include_in_schema=False)

    @router.get(OPENAPI_URL)
    async def openapi(request: Request) -> JSONResponse:
        return JSONResponse(request.app.openapi())

    @router.get("/docs")
    async def docs(request: Request) -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=OPENAPI_URL,
            title=f"{request.app.title} - API docs",
            swagger_js_url="/docs/assets/swagger-ui-bundle.js",
            swagger_css_url="/docs/assets/swagger-ui.css",
            swagger_favicon_url="/docs/assets/favicon.png",
            # Swagger UI would otherwise send the schema to an outside validator for a badge.
            swagger_ui_parameters={"validatorUrl": None},
        )

    @router.get("/docs/assets/{name}")
    async def asset(name: str) -> FileResponse:
        if name not in ASSET_NAMES:
            raise HTTPException(status_code=404)
        return FileResponse(ASSETS / name)

    return router
