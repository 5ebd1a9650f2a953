"""`python -m app`: serve the app with uvicorn until SIGTERM or SIGINT.

uvicorn turns either signal into a graceful shutdown (every request it accepted is answered, the
model's worker stops), then raises the signal again for the handler that was there before it.
`exit_on_signal` is that handler: the process ends with status 0, which is what a clean stop
should report, and ends at once (see `exit_on_signal`).

Under the deploy's units the port belongs to systemd: the worker serves the socket it inherited
(`app.systemd.listen_sockets`), refuses to start when not ready, and tells systemd `READY=1`
once it accepts. Run by hand (tests, development) it binds `--host`/`--port` itself.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import sys
from collections.abc import Awaitable, Callable
from types import FrameType

import uvicorn
from starlette.types import ASGIApp

from app.config import Settings, parse_settings
from app.redaction import RedactingFilter
from app.systemd import ReadyBeforeServing, Watchdog, listen_sockets, notify, whole

# How long a stopping worker waits for requests on connections it accepted but has not read yet.
REQUEST_GRACE_SECONDS = 2.0
STARTUP_FAILURE = 3
# sd_notify STATUS= once the worker accepts: its JSON API serves, its UI may still be building.
# A cold deploy waits for this instead of READY=1 (mlopsdeploy/deployment/operations/workers.py
# spells the same word): with no worker serving yet there is nobody a roll must protect, and the
# UI build was 44 s of a 53 s first start at load 12.
ACCEPTING_STATUS = "accepting"
SERVING_STATUS = "serving"


def configure_logging(settings: Settings) -> None:
    """One stderr handler for everything (uvicorn included), with the token masked."""
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    token = settings.hf_token.get_secret_value() if settings.hf_token else None
    handler.addFilter(RedactingFilter(token))
    logging.basicConfig(level=settings.log_level.upper(), handlers=[handler], force=True)


def exit_on_signal(signum: int, frame: FrameType | None) -> None:
    """End now with status 0: after uvicorn's shutdown, or before it started serving.

    Nothing is left to clean up by then, so the interpreter's teardown is skipped (`os._exit`
    after the logs are flushed): tearing down gradio's, transformers' and onnxruntime's objects
    took 4.6 s of CPU on a test VM at load 10, while the process after "Stopped by SIGTERM"
    still held its unit in `deactivating`. systemd starts no new worker of that unit until then,
    so after `systemctl stop` of the app the connection that should start it again waited that
    long in the socket's backlog before the start could even begin.
    """
    logging.getLogger(__name__).info("Stopped by %s", signal.Signals(signum).name)
    logging.shutdown()
    sys.stdout.flush()
    os._exit(0)


class NotifyingServer(uvicorn.Server):
    """uvicorn's server that tells systemd `READY=1` once it serves whole, `STOPPING=1` when it
    stops.

    `systemctl restart` of a `Type=notify` worker returns at `READY=1`: only then may the next
    worker go down. The worker accepts (its JSON API serves) as soon as its model is ready;
    `READY=1` follows once its UI is built too (`app.systemd.whole`), so that a roll never
    leaves one worker serving alone while another still imports gradio.
    """

    def __init__(self, config: uvicorn.Config, whole: Callable[[], Awaitable[None]]) -> None:
        super().__init__(config)
        self._whole = whole
        self._ready: asyncio.Task[None] | None = None

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started:
            if sockets:
                names = ", ".join(str(sock.getsockname()) for sock in sockets)
                logging.getLogger(__name__).info("Serving the socket systemd holds: %s", names)
            notify(f"STATUS={ACCEPTING_STATUS}")
            self._ready = asyncio.create_task(self._notify_ready())

    async def _notify_ready(self) -> None:
        await self._whole()
        notify(f"STATUS={SERVING_STATUS}")
        notify("READY=1")

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        """Stop accepting, let just-accepted connections send their request, then shut down.

        uvicorn closes a connection that has not sent a request yet at once; on a shared socket
        that is a client who was accepted a moment before SIGTERM and gets no answer, when the
        other workers would have served it. Such a request is read and answered instead.
        """
        notify("STOPPING=1")
        if self._ready is not None:
            self._ready.cancel()
        for server in self.servers:
            server.close()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + REQUEST_GRACE_SECONDS
        while loop.time() < deadline and any(
            getattr(connection, "cycle", None) is None
            for connection in self.server_state.connections
        ):
            await asyncio.sleep(0.02)
        await super().shutdown(sockets)


def build_server(
    app: ASGIApp, settings: Settings, whole: Callable[[], Awaitable[None]]
) -> NotifyingServer:
    """The server `main` runs: `app` on the settings' address (unless given sockets)."""
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_config=None,
        # The C parser, a dependency of the app: uvicorn's "auto" falls back to h11 when it is
        # missing, and h11's pure-Python parsing and writing cost ~0.5 ms of every answer
        # (one-client p50 of /api/sentiment, 9.83 -> 9.40 ms beside a 7.2 ms raw call).
        http="httptools",
        # Every request accepted before the stop is answered, however long it takes: uvicorn's
        # bound cancels the slow ones, and it answers a cancelled request with HTTP 500 (12 of
        # them in a release switch at load 25, where a stopping worker's queue outlasted the
        # 10 s it had). systemd's TimeoutStopSec bounds the whole stop instead.
        timeout_graceful_shutdown=None,
    )
    return NotifyingServer(config, whole)


def main(argv: list[str] | None = None) -> int:
    settings = parse_settings(argv, os.environ)
    configure_logging(settings)
    signal.signal(signal.SIGTERM, exit_on_signal)
    signal.signal(signal.SIGINT, exit_on_signal)
    # Pinging starts before the slow imports so that start-up counts as alive (see app.systemd).
    watchdog = Watchdog.from_environment()
    if watchdog:
        watchdog.start()
    # Imported only now: gradio and transformers take seconds to import, and `--help` or a
    # mistyped flag should answer at once.
    from app.factory import create_app

    sockets = listen_sockets()
    app = create_app(settings, watchdog)
    server = build_server(ReadyBeforeServing(app) if sockets else app, settings, lambda: whole(app))
    server.run(sockets=sockets or None)
    # uvicorn.run's own convention: a server that never started (start-up failed) exits 3.
    return 0 if server.started else STARTUP_FAILURE


if __name__ == "__main__":
    sys.exit(main())
