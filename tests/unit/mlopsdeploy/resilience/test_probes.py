"""The probe asks as a user arriving now would: on a new connection, whatever came before."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from mlopsdeploy.resilience.probes import PROBE_SENTENCES, AppProbe

LABELS = {canary.text: canary.label for canary in PROBE_SENTENCES}


class SharedSocket(ThreadingHTTPServer):
    """Workers on one socket, one of which is then stopped (SIGSTOP).

    After `stop_worker()` every connection accepted before it belongs to the stopped worker and
    never gets another answer; connections accepted later are served, as the other workers do.
    """

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Worker)
        self.generation = 0
        self.released = threading.Event()

    def stop_worker(self) -> None:
        self.generation += 1


class Worker(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as uvicorn offers it
    server: SharedSocket

    def setup(self) -> None:
        super().setup()
        self.accepted_in = self.server.generation

    def do_GET(self) -> None:
        self._answer({"status": "ready", "model_version": "m1"})

    def do_POST(self) -> None:
        texts = json.loads(self.rfile.read(int(self.headers["Content-Length"])))["texts"]
        self._answer({"results": [{"label": LABELS[text], "score": 0.99} for text in texts]})

    def _answer(self, body: dict[str, object]) -> None:
        if self.accepted_in != self.server.generation:
            self.server.released.wait()  # a stopped process answers nothing
            return
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:
        return None


@pytest.fixture
def shared_socket() -> Iterator[SharedSocket]:
    server = SharedSocket()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.released.set()
        server.shutdown()
        server.server_close()


def test_a_stopped_worker_does_not_hold_the_probe_after_the_fault(
    shared_socket: SharedSocket,
) -> None:
    probe = AppProbe(f"http://127.0.0.1:{shared_socket.server_address[1]}")
    try:
        assert probe.correct().ok  # steady state, before the fault
        shared_socket.stop_worker()
        answer = probe.correct()
    finally:
        probe.close()
    assert answer.ok, answer.cause
