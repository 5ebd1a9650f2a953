"""The Gradio UI at "/", built while the JSON API already serves.

Importing gradio costs more than the rest of the start together (2.6 s of a ~4 s start on a
quiet machine), and the JSON routes, the probes and the canaries need none of it. So the app
answers `/readyz`, `/api/*`, `/livez` and `/metrics` as soon as its model is ready, and gradio
is imported and the UI built only then, in a thread, while those routes serve.

A UI request that arrives before the UI is built is not refused: it waits for the build and is
then served, so a browser that reaches a just-started worker (a rolling restart, a recovery)
gets the page a moment later instead of an error. Only a build that fails or outlasts
`UI_WAIT_SECONDS` answers 503, saying why.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from contextlib import AsyncExitStack, suppress
from typing import Literal

from fastapi import FastAPI
from starlette.types import Receive, Scope, Send

from app.errors import AppError

# Longest a UI request waits for the build: gradio's import takes ~2.6 s quiet, 30 s and more on
# a machine at load 16 (a CI run at -n 2 on two cores).
UI_WAIT_SECONDS = 120.0
RETRY_AFTER_SECONDS = 2
# WebSocket close code 1013: "try again later".
TRY_AGAIN_LATER = 1013

logger = logging.getLogger(__name__)

UiState = Literal["starting", "serving", "failed"]


class UiUnavailable(AppError):
    """The UI is not built: still starting after the wait, or its build failed."""

    status = 503

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind

    @property
    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(RETRY_AFTER_SECONDS)}


class LateUi:
    """ASGI app for the UI's mount: the UI `build()` returns, once `start()` has built it.

    + build: imports gradio and returns the UI as an app with a lifespan (run in a thread)
    """

    def __init__(self, build: Callable[[], FastAPI]) -> None:
        self._build = build
        self._app: FastAPI | None = None
        self._problem: str | None = None
        self._built = asyncio.Event()
        self._lifespans = AsyncExitStack()

    @property
    def state(self) -> UiState:
        """`starting`, `serving` or `failed`, as /readyz reports it."""
        if self._app is not None:
            return "serving"
        return "failed" if self._problem else "starting"

    async def start(self) -> None:
        """Build the UI in a daemon thread, then start it (gradio's queue) on this event loop.

        A daemon thread, like the model's loader: a stop during the build must not wait for it.
        """
        building: Future[FastAPI] = Future()

        def run() -> None:
            started = time.monotonic()
            try:
                building.set_result(self._build())
            except BaseException as error:
                building.set_exception(error)
            else:
                logger.info("UI built in %.2fs", time.monotonic() - started)

        threading.Thread(target=run, name="ui-builder", daemon=True).start()
        try:
            app = await asyncio.wrap_future(building)
            await self._lifespans.enter_async_context(app.router.lifespan_context(app))
        except Exception as error:
            self._problem = f"the UI failed to start: {type(error).__name__}: {error}"
            logger.exception("The UI failed to start; the JSON API keeps serving")
        else:
            self._app = app
        finally:
            self._built.set()

    async def stop(self) -> None:
        await self._lifespans.aclose()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self._app is None:
            with suppress(TimeoutError):
                await asyncio.wait_for(self._built.wait(), UI_WAIT_SECONDS)
        if self._app is None:
            problem = self._unavailable()
            if scope["type"] == "websocket":
                await send({"type": "websocket.close", "code": TRY_AGAIN_LATER})
                return
            raise problem
        await self._app(scope, receive, send)

    def _unavailable(self) -> UiUnavailable:
        if self._problem:
            return UiUnavailable("ui_unavailable", f"{self._problem}; the JSON API still serves")
        return UiUnavailable(
            "ui_starting",
            f"the UI is still starting after {UI_WAIT_SECONDS:.0f} s; retry in a moment "
            "(the JSON API already serves)",
        )
