"""Webhook alerts: a JSON POST to a loopback receiver; failures never leak the URL."""

from __future__ import annotations

import json
import logging
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from mlopsdeploy.watchdog.alerts import Webhook, alert_text
from mlopsdeploy.watchdog.journal import Incident, Step


class Receiver(ThreadingHTTPServer):
    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), ReceiverHandler)
        self.bodies: list[dict] = []
        self.paths: list[str] = []


class ReceiverHandler(BaseHTTPRequestHandler):
    server: Receiver

    def do_POST(self) -> None:
        length = int(self.headers["Content-Length"])
        self.server.bodies.append(json.loads(self.rfile.read(length)))
        self.server.paths.append(self.path)
        self.send_response(204)
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        return None


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join()


def incident() -> Incident:
    item = Incident("vm1", "connection refused", 100.0, 99.0, "service inactive/dead")
    item.steps.append(Step(101.0, "restart", "inactive", "ok", 1.0))
    return item


def test_each_event_is_posted_as_json(receiver: Receiver) -> None:
    url = f"http://127.0.0.1:{receiver.server_port}/hooks/s3cr3t-token"
    hook = Webhook(url)
    item = incident()
    hook.send("detected", item)
    item.recovered_at = 109.0
    hook.send("recovered", item)
    assert [b["event"] for b in receiver.bodies] == ["detected", "recovered"]
    assert receiver.paths == ["/hooks/s3cr3t-token"] * 2
    last = receiver.bodies[-1]
    assert last["host"] == "vm1"
    assert last["text"] == "[mlopsdeploy] vm1 recovered after 9.0s (restart)"
    assert last["incident"]["seconds_to_recover"] == 9.0


def test_gave_up_text_is_loud_and_says_probing_goes_on() -> None:
    item = incident()
    item.steps.append(Step(200.0, "give_up", "hourly repair limit reached", "gave up"))
    text = alert_text("gave_up", item)
    assert text.startswith("[mlopsdeploy] GAVE UP on vm1 after 1 repairs")
    assert "Still probing" in text


def test_undeliverable_alert_is_logged_without_the_url(caplog: pytest.LogCaptureFixture) -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    hook = Webhook(f"http://127.0.0.1:{port}/hooks/s3cr3t-token", timeout_s=1.0)
    with caplog.at_level(logging.WARNING):
        hook.send("detected", incident())
    assert "not delivered" in caplog.text
    assert "s3cr3t" not in caplog.text
    assert "s3cr3t" not in repr(hook)
