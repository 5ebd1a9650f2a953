"""Building the service: the products, the JSON routes, the metrics and the UI in one ASGI app.

Start-up time is recovery time, so the slow parts run side by side: the model starts loading
in a thread before gradio (seconds to import) is imported and the UI is built, and the
lifespan waits for the model. gradio is therefore imported inside `create_app`, not above.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from app.config import Settings
from app.errors import AppError
from app.inference_api import InferenceApi
from app.local_model import LocalModel
from app.metrics import Metrics, MetricsMiddleware
from app.routes import build_router, error_handler
from app.services import Services
from app.systemd import Watchdog

logger = logging.getLogger(__name__)


def create_app(settings: Settings, watchdog: Watchdog | None = None) -> FastAPI:
    """The ASGI app for `settings`; the model loads when the app starts (its lifespan).

    + watchdog: systemd's watchdog, fed by the event loop's heartbeat while the app runs
    """
    metrics = Metrics()
    model = LocalModel(
        settings.model,
        runtime=settings.runtime,
        threads=settings.torch_threads,
        batch_max_size=settings.batch_max_size,
        batch_wait=settings.batch_wait_ms / 1000,
        on_batch=metrics.batch_size.observe,
    )
    model.begin_loading()
    api = InferenceApi(
        settings.api_model,
        settings.hf_token,
        timeout=settings.api_timeout,
        max_tokens=settings.api_max_tokens,
    )
    services = Services(settings, metrics, model, api)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        heartbeat = asyncio.create_task(watchdog.heartbeat()) if watchdog else None
        await model.start()
        readiness = await model.readiness()
        metrics.ready.set(1 if readiness.ready else 0)
        if readiness.ready:
            logger.info("Ready: the canary sentences classify correctly")
        else:
            logger.error("Not ready: %s", readiness.reason)
        try:
            yield
        finally:
            if heartbeat:
                heartbeat.cancel()
            await model.stop()

    app = FastAPI(
        title="mlopsdeploy app",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    # The JSON routes must exist before the UI is mounted at "/", which would otherwise take them.
    app.include_router(build_router(services))
    app.add_exception_handler(AppError, error_handler(services))
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    import gradio as gr

    from app.ui import build_ui

    # show_error=False: the UI shows the app's own gr.Error messages, never raw exception texts.
    return gr.mount_gradio_app(app, build_ui(services), path="/", ssr_mode=False, show_error=False)
