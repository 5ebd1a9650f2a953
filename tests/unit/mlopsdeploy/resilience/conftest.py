"""A simulated deployed host for experiment tests: an app over httpx MockTransport (or on a
loopback port, for the client load), a deploy that can refuse, and faults that break the
simulation the way real ones break a VM."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from mlopsdeploy.faults import AppPaths, Fault, Recovery, Service, Target
from mlopsdeploy.resilience.experiment import DeployRequest, Subject
from mlopsdeploy.resilience.probes import PROBE_SENTENCES, AppProbe
from mlopsdeploy.resilience.record import DeployRun

_STATUS = {"api_timeout": 504, "api_overloaded": 503}


@dataclass
class FakeApp:
    """The app's routes. Down, it answers 503 until `heal_after` more readyz polls pass (if set)."""

    up: bool = True
    heal_after: int | None = None
    api_error: str | None = None
    wrong_labels: bool = False
    failing: int = 0
    """How many of the next one-sentence requests (the client load's) answer 503."""
    singles: int = 0
    """One-sentence requests received so far."""
    awaiting_trust: str | None = None
    """The host key fingerprint the deploy set when it held the token back (the API refuses)."""

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/readyz":
            if not self.up and self.heal_after is not None:
                self.heal_after -= 1
                self.up = self.heal_after <= 0
            if not self.up:
                return httpx.Response(503, json={"status": "not ready", "reason": "down"})
            return httpx.Response(200, json={"status": "ready", "model_version": "m1"})
        if request.url.path == "/api/sentiment":
            labels = {c.text: c.label for c in PROBE_SENTENCES}
            body = json.loads(request.content)
            if "text" in body:  # one sentence, as the client load asks
                self.singles += 1
                if self.failing:
                    self.failing -= 1
                    return httpx.Response(503, json={"error": "down"})
                return httpx.Response(200, json={"label": labels[body["text"]], "score": 0.99})
            texts = body["texts"]
            flip = {"POSITIVE": "NEGATIVE", "NEGATIVE": "POSITIVE"}
            results = [
                {"label": flip[labels[t]] if self.wrong_labels else labels[t], "score": 0.99}
                for t in texts
            ]
            return httpx.Response(200, json={"results": results})
        prompt = json.loads(request.content)["prompt"]
        if self.awaiting_trust:
            detail = f"off until its owner confirms {self.awaiting_trust} with `mlopsdeploy trust`"
            return httpx.Response(503, json={"error": "awaiting_host_trust", "detail": detail})
        if self.api_error:
            status = _STATUS.get(self.api_error, 502)
            return httpx.Response(status, json={"error": self.api_error, "detail": "try later"})
        return httpx.Response(200, json={"text": f"Stand-in answer to: {prompt}"})


@dataclass
class FakeDeployer:
    """Brings the app up unless `refuse` gives a reason; reports changes when it fixed something."""

    app: FakeApp
    refuse: Callable[[DeployRequest], str | None] = lambda request: None
    requests: list[DeployRequest] = field(default_factory=list)
    releases: set[str | None] = field(default_factory=lambda: {None})

    def __call__(self, request: DeployRequest) -> DeployRun:
        self.requests.append(request)
        reason = self.refuse(request)
        if reason:
            return DeployRun(request.purpose, False, 0.01, error=reason)
        changed = [] if self.app.up else ["App service"]
        if request.release_tag not in self.releases:
            changed.append("Stage release")
            self.releases.add(request.release_tag)
        self.app.up = True
        return DeployRun(request.purpose, True, 0.01, changed=changed)

    @property
    def purposes(self) -> list[str]:
        return [request.purpose for request in self.requests]


@dataclass
class ScriptedFault(Fault):
    """Breaks the FakeApp: `down` takes it down (healing after `heal_after` polls if set)."""

    app: FakeApp
    recovery: Recovery = field(default_factory=Recovery)
    down: bool = True
    heal_after: int | None = None
    api_error: str | None = None
    explode: str | None = None
    undone: int = 0

    name = "scripted"
    breaks = "the fake app"

    def inject(self, target: Target) -> None:
        if self.explode:
            raise RuntimeError(self.explode)
        if self.down:
            self.app.up = False
            self.app.heal_after = self.heal_after
        self.app.api_error = self.api_error

    def undo(self, target: Target) -> None:
        self.undone += 1
        self.app.api_error = None


@dataclass
class World:
    app: FakeApp
    deployer: FakeDeployer
    subject: Subject

    def fault(self, recovery: Recovery | None = None, **options: object) -> ScriptedFault:
        return ScriptedFault(self.app, recovery or Recovery(), **options)  # type: ignore[arg-type]


def _world(app: FakeApp, probe: AppProbe, load_rate: float = 0.0) -> World:
    deployer = FakeDeployer(app)
    target = Target(
        name="vm1",
        guest=None,  # type: ignore[arg-type]
        service=Service("mlopsdeploy.service", 8000),
        paths=AppPaths("/r", "/r/venv", "/r/current/model"),
    )
    subject = Subject(target, probe, deployer, lambda: True, load_rate=load_rate)
    return World(app, deployer, subject)


@pytest.fixture
def world() -> World:
    app = FakeApp()
    return _world(app, AppProbe("http://vm1:8000", transport=httpx.MockTransport(app)))


class _Serve(BaseHTTPRequestHandler):
    """Hands each request to the server's FakeApp, one at a time (its counters take no lock)."""

    server: _AppServer

    def do_GET(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        answer = self.server.app(
            httpx.Request(self.command, f"http://app{self.path}", content=body)
        )
        self.send_response(answer.status_code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer.content)))
        self.end_headers()
        self.wfile.write(answer.content)

    do_POST = do_GET

    def log_message(self, format: str, *args: object) -> None:
        return None


class _AppServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # the client load and the probe never wait for a connection

    def __init__(self, app: FakeApp) -> None:
        super().__init__(("127.0.0.1", 0), _Serve)
        self.app = app
        self.one_at_a_time = threading.Lock()


@pytest.fixture
def served_world() -> Iterator[World]:
    """The world with its app on a loopback port and a client load of 20 requests/s."""
    app = FakeApp()
    server = _AppServer(app)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    probe = AppProbe(f"http://127.0.0.1:{server.server_address[1]}")
    try:
        yield _world(app, probe, load_rate=20.0)
    finally:
        probe.close()
        server.shutdown()
        server.server_close()
