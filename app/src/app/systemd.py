"""What the app does for systemd: serve its socket, say when it is ready, ping its watchdog.

**Socket.** Under the deploy, systemd owns the app port (a `.socket` unit) and hands the same
listening socket to every worker (`Sockets=`, `$LISTEN_FDS`). The port never closes while workers
restart: connections wait in the backlog instead of being refused. `listen_sockets` takes them.

**Readiness.** With `Type=notify`, `systemctl restart` of a worker returns only after `READY=1`,
which is what lets the deploy restart workers one at a time. A worker on the shared socket must
take no connection before its model answers the canaries right, because a client cannot choose
another worker: `ReadyBeforeServing` fails the start-up instead (the process exits, systemd
restarts it), and `READY=1` is sent only once the server accepts.

**Watchdog.** A hung app is killed and restarted by systemd itself.

A process that is alive but answers nothing (SIGSTOP, a deadlocked event loop) looks healthy to
`Restart=always`. With `WatchdogSec=` in the unit, systemd expects `WATCHDOG=1` on
`$NOTIFY_SOCKET` at least that often and kills the service when it stops coming. The pings come
from a thread, but only while the event loop proves it still runs (a heartbeat it refreshes), so a
blocked loop stops them too. Without `$WATCHDOG_USEC` (no watchdog configured, e.g. when run by
hand) nothing here does anything.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import threading
import time
from collections.abc import Mapping, MutableMapping
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

# sd_listen_fds(3): inherited sockets start at this descriptor.
LISTEN_FDS_START = 3
READINESS_PATH = "/readyz"

logger = logging.getLogger(__name__)


def notify(state: str, environ: Mapping[str, str] = os.environ) -> bool:
    """Send `state` (e.g. "WATCHDOG=1") to systemd; False when not run under a notify socket."""
    path = environ.get("NOTIFY_SOCKET")
    if not path:
        return False
    address = "\0" + path[1:] if path.startswith("@") else path
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.sendto(state.encode(), address)
    return True


def listen_sockets(environ: MutableMapping[str, str] = os.environ) -> list[socket.socket]:
    """The listening sockets systemd passed to this process (`$LISTEN_FDS`), else [].

    The variables are removed so that no child process believes the sockets are its own. The
    family comes from the descriptor itself (`socket.socket(fileno=...)`): uvicorn's `--fd`
    would assume a Unix socket.
    """
    count = environ.pop("LISTEN_FDS", "")
    owner = environ.pop("LISTEN_PID", "")
    environ.pop("LISTEN_FDNAMES", None)
    if not count.isdigit() or owner != str(os.getpid()):
        return []
    fds = range(LISTEN_FDS_START, LISTEN_FDS_START + int(count))
    return [socket.socket(fileno=fd) for fd in fds]


async def _get(app: ASGIApp, path: str) -> tuple[int, bytes]:
    """Status and body `app` answers to `GET path`, called in-process (no socket, no other
    worker)."""
    scope: dict[str, Any] = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"localhost")],
        "client": ("127.0.0.1", 0),
        "server": ("127.0.0.1", 0),
    }
    status = 0
    body = b""

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        nonlocal status, body
        if message["type"] == "http.response.start":
            status = int(message["status"])
        elif message["type"] == "http.response.body":
            body += message.get("body", b"")

    await app(scope, receive, send)
    return status, body


async def whole(app: ASGIApp, interval: float = 0.2) -> None:
    """Return once the app's `/readyz` no longer says its UI is starting (built, or failed).

    The JSON API serves as soon as the model is ready, and gradio is imported only then, in a
    thread (app/late_ui.py), which takes the interpreter for seconds (30 s at load 16). `READY=1`
    waits for this, because it is what a rolling restart waits for before it stops the next
    worker: moving on earlier left one worker serving alone while it imported gradio, and the
    probes' 5 s answers timed out (release-switch and rolling-restart at load 25).
    """
    while True:
        _, body = await _get(app, READINESS_PATH)
        try:
            ui = json.loads(body).get("ui")
        except (ValueError, AttributeError):
            ui = None
        if ui != "starting":
            return
        await asyncio.sleep(interval)


class ReadyBeforeServing:
    """ASGI wrapper: the start-up fails unless the app's own `/readyz` says ready.

    uvicorn runs the lifespan start-up (the model load) before it accepts connections, so a
    failed start-up means this worker never takes a request from the shared socket: no 503,
    and above all no wrong label, reaches a client that another worker could have served.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "lifespan":
            await self.app(scope, receive, send)
            return

        async def checked_send(message: Message) -> None:
            if message["type"] == "lifespan.startup.complete":
                status, _ = await _get(self.app, READINESS_PATH)
                if status != 200:
                    reason = f"{READINESS_PATH} answered {status}: not serving the shared socket"
                    logger.error("Not ready: %s", reason)
                    message = {"type": "lifespan.startup.failed", "message": reason}
            await send(message)

        await self.app(scope, receive, checked_send)


class Watchdog:
    """Pings systemd from a thread while the event loop's heartbeat is fresh.

    Until the loop starts beating (model loading can take a while) the thread pings regardless:
    the process is demonstrably running its start-up code, and a SIGSTOP still silences it.
    """

    def __init__(self, interval: float, environ: Mapping[str, str] = os.environ) -> None:
        self.interval = interval
        self._environ = environ
        self._beat: float | None = None
        self._stop = threading.Event()

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] = os.environ) -> Watchdog | None:
        """The watchdog systemd asked for (ping at half its period), or None."""
        usec = environ.get("WATCHDOG_USEC")
        if not usec or not environ.get("NOTIFY_SOCKET"):
            return None
        return cls(int(usec) / 1_000_000 / 2, environ)

    def start(self) -> None:
        threading.Thread(target=self._run, name="systemd-watchdog", daemon=True).start()

    def stop(self) -> None:
        self._stop.set()

    def fresh(self) -> bool:
        """True while the loop has not started yet or beat within two ping periods."""
        return self._beat is None or time.monotonic() - self._beat < 2 * self.interval

    async def heartbeat(self) -> None:
        """Runs on the event loop for the app's lifetime: proof that the loop is not stuck."""
        while not self._stop.is_set():
            self._beat = time.monotonic()
            await asyncio.sleep(self.interval / 2)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            if self.fresh():
                notify("WATCHDOG=1", self._environ)
