"""A simulated deployed host for experiment tests: an app over httpx MockTransport, a deploy
that can refuse, and faults that break the simulation the way real ones break a VM."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field

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
            texts = json.loads(request.content)["texts"]
            flip = {"POSITIVE": "NEGATIVE", "NEGATIVE": "POSITIVE"}
            results = [
                {"label": flip[labels[t]] if self.wrong_labels else labels[t], "score": 0.99}
                for t in texts
            ]
            return httpx.Response(200, json={"results": results})
        prompt = json.loads(request.content)["prompt"]
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


@pytest.fixture
def world() -> World:
    app = FakeApp()
    deployer = FakeDeployer(app)
    target = Target(
        name="vm1",
        guest=None,  # type: ignore[arg-type]
        service=Service("mlopsdeploy.service", 8000),
        paths=AppPaths("/r", "/r/venv", "/r/current/model"),
    )
    probe = AppProbe("http://vm1:8000", transport=httpx.MockTransport(app))
    subject = Subject(target, probe, deployer, default_key_rejected=lambda: True)
    return World(app, deployer, subject)
