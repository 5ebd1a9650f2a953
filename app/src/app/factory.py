"""Building the service: the products, the JSON routes, the metrics and the UI in one ASGI app.

Start-up time is recovery time, so nothing slow stands between the process start and a ready
model: the model starts loading in a thread as soon as the app is created, the lifespan waits
for it and its canaries, and gradio (seconds to import) is only imported after that, while the
JSON API already serves (see app.late_ui). gradio is therefore imported in `ui_app`, not above.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress

from fastapi import FastAPI

from app.config import Settings
from app.errors import AppError
from app.inference_api import InferenceApi
from app.late_ui import LateUi
from app.local_model import LocalModel
from app.metrics import Metrics, MetricsMiddleware
from app.routes import add_routes, error_handler
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
    ui = LateUi(lambda: ui_app(services))

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
        # Built after the model, not beside it: both imports need the interpreter's one lock.
        ui_started = asyncio.create_task(ui.start())
        try:
            yield
        finally:
            if heartbeat:
                heartbeat.cancel()
            ui_started.cancel()
            with suppress(asyncio.CancelledError):
                await ui_started
            await ui.stop()
            await model.stop()

    app = FastAPI(
        title="mlopsdeploy app",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    # The JSON routes must exist before the UI is mounted at "/", which would otherwise take them.
    add_routes(app.router, services, lambda: ui.state)
    app.add_exception_handler(AppError, error_handler(services))
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    app.mount("/", ui)
    return app


# How often gradio's queue looks for UI events while it has none. Its default on Linux is every
# 1 ms (progress every 10 ms): two tasks waking the event loop ~1000 times a second in every idle
# worker, CPU the model and the JSON API then lack on a 2-core VM, and a timer heap every request
# goes through. gradio's own Windows values: a UI click waits at most 50 ms longer.
UI_QUEUE_POLL_S = 0.05
UI_PROGRESS_POLL_S = 0.1


def ui_app(services: Services) -> FastAPI:
    """The Gradio UI as an app of its own (imports gradio: seconds), for `LateUi` to serve."""
    import gradio as gr

    from app.ui import build_ui

    ui = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    blocks = build_ui(services)
    # show_error=False: the UI shows the app's own gr.Error messages, never raw exception texts.
    mounted = gr.mount_gradio_app(ui, blocks, path="/", ssr_mode=False, show_error=False)
    blocks._queue.sleep_when_free = UI_QUEUE_POLL_S
    blocks._queue.progress_update_sleep_when_free = UI_PROGRESS_POLL_S
    return mounted
