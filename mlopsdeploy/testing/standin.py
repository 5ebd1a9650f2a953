"""A loopback stand-in for the Hugging Face Inference API that tests can switch into failure modes.

No machine here reaches the Hub, so the app's API product is tested against this server instead.
It speaks the part of the protocol `huggingface_hub.InferenceClient` (2.4) uses when given a URL:

``POST <url>/v1/chat/completions``: OpenAI-style chat completion, SSE chunks when ``"stream"``,
with ``Authorization: Bearer <token>`` checked when a token is configured. Its modes:

- ``ok``: answers (deterministically: the reply quotes the prompt, so a test sees it round-trip);
- ``overloaded``: 503 ``{"error": ..., "error_type": "overloaded"}``;
- ``slow``: holds each request ``slow_seconds`` (longer than a client timeout) before answering;
- ``unauthorized``: 401 whatever the token (a revoked token);
- ``down``: the listening socket is closed, so connections are refused.

Switch a mode with ``StandIn.mode = ...`` in-process, or ``POST /_standin/mode {"mode": ...}`` from
another process. In ``down`` the API port is closed, including its control route; start the server
with a ``control_port`` to keep a control listener that survives ``down``.

Example::

    with StandIn(token=token) as standin:
        client = InferenceClient(standin.url, token=token)
        standin.mode = "overloaded"

CLI (the token comes from ``STANDIN_TOKEN`` or ``--token-file``, never from argv)::

    STANDIN_TOKEN=... python -m mlopsdeploy.testing --host 127.0.0.1 --port 8088 --control-port 8089
"""

from __future__ import annotations

import contextlib
import hmac
import json
import socket
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Literal, cast, get_args

from mlopsdeploy.testing.chat_protocol import (
    completion,
    completion_chunks,
    last_user_message,
    reply_for,
)

Mode = Literal["ok", "overloaded", "slow", "unauthorized", "down"]
MODES: tuple[Mode, ...] = get_args(Mode)

CHAT_PATH = "/v1/chat/completions"
CONTROL_PATH = "/_standin/mode"


class _Server(ThreadingHTTPServer):
    """A threaded HTTP server that remembers its open connections so `down` can cut them."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], standin: StandIn, *, control_only: bool) -> None:
        self.standin = standin
        self.control_only = control_only
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._connections_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Ignore clients that left (timed out, or cut by `down`); report anything else."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)

    def cut_connections(self, keep: socket.socket | None) -> None:
        """Abort every open connection but `keep`, as a crashed server would."""
        with self._connections_lock:
            connections = [connection for connection in self._connections if connection is not keep]
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)


class _Handler(BaseHTTPRequestHandler):
    """One request. HTTP/1.0: every response closes its connection, so `down` is immediate."""

    server: _Server
    protocol_version = "HTTP/1.0"

    def log_message(self, format: str, *args: Any) -> None:
        """Stay quiet: test output belongs to the test."""

    def do_GET(self) -> None:
        if self.path == CONTROL_PATH:
            self._send_json(200, {"mode": self.server.standin.mode})
        else:
            self._send_json(404, {"error": f"no route GET {self.path}"})

    def do_POST(self) -> None:
        body = self._read_json()
        if self.path == CONTROL_PATH:
            self._set_mode(body)
            return
        if self.server.control_only or self.path != CHAT_PATH:
            self._send_json(404, {"error": f"no route POST {self.path}"})
            return
        self.server.standin.count_request()
        if not self._fail_by_mode():
            self._chat_completion(body)

    def _read_json(self) -> Any:
        """The JSON body, or {} when there is none or it does not parse."""
        try:
            length = int(self.headers.get("Content-Length") or 0)
            return json.loads(self.rfile.read(length)) if length > 0 else {}
        except ValueError:
            return {}

    def _set_mode(self, body: Any) -> None:
        mode = body.get("mode") if isinstance(body, dict) else None
        if mode not in MODES:
            self._send_json(400, {"error": f"mode must be one of {', '.join(MODES)}"})
            return
        # Switch first, answer second: when the caller reads the answer, the mode is in force.
        self.server.standin.switch(mode, keep=self.connection)
        self._send_json(200, {"mode": mode})

    def _fail_by_mode(self) -> bool:
        """Answer as the current mode demands; True when that answer was a failure."""
        standin = self.server.standin
        mode = standin.mode
        if mode == "unauthorized" or not standin.authorized(self.headers.get("Authorization")):
            self._send_json(401, {"error": "Invalid credentials in Authorization header"})
            return True
        if mode == "overloaded":
            self._send_json(503, {"error": "Model is overloaded", "error_type": "overloaded"})
            return True
        if mode == "slow":
            standin.hold()
        return False

    def _chat_completion(self, body: Any) -> None:
        request = body if isinstance(body, dict) else {}
        tokens = reply_for(last_user_message(request.get("messages")), request.get("max_tokens"))
        if request.get("stream"):
            self._send_events(completion_chunks(tokens))
        else:
            self._send_json(200, completion(tokens))

    def _send_json(self, status: int, payload: Any) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _send_events(self, events: Iterator[dict[str, Any]]) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.end_headers()
        for event in events:
            self.wfile.write(f"data: {json.dumps(event)}\n\n".encode())
        self.wfile.write(b"data: [DONE]\n\n")


class StandIn:
    """The stand-in server: a context manager serving on `host`:`port` (0 picks a free port).

    + token: the bearer token clients must send; None accepts any request.
    + slow_seconds: how long `slow` holds a request; keep it above the client's timeout.
    + control_port: also serve the control route on this port (loopback of `host`), which stays up
      in `down` mode; None for no separate control listener.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        token: str | None = None,
        *,
        slow_seconds: float = 30.0,
        control_port: int | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.slow_seconds = slow_seconds
        self._token = token
        self._mode: Mode = "ok"
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self._api: tuple[_Server, threading.Thread] | None = None
        self._control: tuple[_Server, threading.Thread] | None = None
        self._control_port = control_port
        self._requests = 0

    def __repr__(self) -> str:
        return f"StandIn(url={self.url!r}, mode={self._mode!r})"

    @property
    def url(self) -> str:
        """Base URL to give InferenceClient (as `model` / `base_url`)."""
        return f"http://{self.host}:{self.port}"

    @property
    def control_url(self) -> str | None:
        """URL of the control listener that survives `down`, when one was asked for."""
        if self._control is None:
            return None
        return f"http://{self.host}:{self._control[0].server_address[1]}"

    @property
    def requests(self) -> int:
        """How many API requests (chat or text generation) reached the stand-in, in any mode."""
        return self._requests

    @property
    def mode(self) -> Mode:
        return self._mode

    @mode.setter
    def mode(self, mode: str) -> None:
        self.switch(mode)

    def switch(self, mode: str, keep: socket.socket | None = None) -> None:
        """Change the mode; `keep` is a connection `down` must not cut (the one asking for it)."""
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}; expected one of {', '.join(MODES)}")
        with self._lock:
            previous, self._mode = self._mode, cast(Mode, mode)
            if mode == "down" and previous != "down":
                self._stop_api(keep)
            elif mode != "down" and previous == "down" and not self._closing.is_set():
                self._start_api()

    def start(self) -> StandIn:
        with self._lock:
            if self._control_port is not None:
                self._control = _serve(
                    _Server((self.host, self._control_port), self, control_only=True)
                )
            if self._mode != "down":
                self._start_api()
        return self

    def close(self) -> None:
        """Stop both listeners and release requests held by `slow`."""
        self._closing.set()
        with self._lock:
            self._stop_api()
            if self._control is not None:
                _stop(self._control)
                self._control = None

    def __enter__(self) -> StandIn:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def authorized(self, header: str | None) -> bool:
        if self._token is None:
            return True
        expected = f"Bearer {self._token}".encode()
        return hmac.compare_digest((header or "").encode(), expected)

    def count_request(self) -> None:
        with self._lock:
            self._requests += 1

    def hold(self) -> None:
        """Keep a `slow` request waiting; returns early only when the stand-in closes."""
        self._closing.wait(self.slow_seconds)

    def _start_api(self) -> None:
        self._api = _serve(_Server((self.host, self.port), self, control_only=False))
        self.port = self._api[0].server_address[1]

    def _stop_api(self, keep: socket.socket | None = None) -> None:
        if self._api is not None:
            _stop(self._api, keep)
            self._api = None


def _serve(server: _Server) -> tuple[_Server, threading.Thread]:
    thread = threading.Thread(target=server.serve_forever, name="standin", daemon=True)
    thread.start()
    return server, thread


def _stop(served: tuple[_Server, threading.Thread], keep: socket.socket | None = None) -> None:
    server, thread = served
    server.shutdown()
    server.server_close()
    server.cut_connections(keep)
    thread.join()
