from __future__ import annotations

import json

import httpx
from app.readiness import CANARIES as APP_CANARIES

from mlopsdeploy.deployment.control.probe import DEFAULT_CANARIES, Canary, wait_healthy
from mlopsdeploy.model.canaries import READINESS
from mlopsdeploy.model.recipe import LABELS


class FakeApp:
    """An httpx MockTransport handler standing in for the app's /readyz and /api/sentiment."""

    def __init__(self, not_ready_rounds: int = 0, flip: bool = False, status: int = 200) -> None:
        self.not_ready_rounds = not_ready_rounds
        self.flip = flip
        self.status = status
        self.calls = 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/readyz":
            self.calls += 1
            if self.calls <= self.not_ready_rounds:
                return httpx.Response(503, json={"status": "not ready", "reason": "loading model"})
            return httpx.Response(200, json={"status": "ready", "model_version": "m1"})
        texts = json.loads(request.content)["texts"]
        labels = {c.text: c.label for c in DEFAULT_CANARIES}
        results = []
        for text in texts:
            label = labels.get(text, "POSITIVE")
            if self.flip:
                label = "NEGATIVE" if label == "POSITIVE" else "POSITIVE"
            results.append({"label": label, "score": 0.99})
        return httpx.Response(self.status, json={"results": results})


def probe(app: FakeApp, timeout: float = 5.0):
    return wait_healthy(
        "http://vm:8000", timeout=timeout, interval=0.01, transport=httpx.MockTransport(app)
    )


def test_healthy_app_passes_with_its_model_version() -> None:
    result = probe(FakeApp())
    assert result.ok and result.model_version == "m1"


def test_waits_while_the_model_loads() -> None:
    app = FakeApp(not_ready_rounds=3)
    assert probe(app).ok
    assert app.calls == 4


def test_wrong_canary_label_fails_at_once_naming_the_sentence() -> None:
    app = FakeApp(flip=True)
    result = probe(app, timeout=60)
    assert not result.ok
    assert "'I am so happy today!' classified NEGATIVE, expected POSITIVE" in result.cause
    assert app.calls == 1  # wrong labels are final: no waiting out the timeout


def test_never_ready_reports_the_last_reason() -> None:
    result = probe(FakeApp(not_ready_rounds=10**6), timeout=0.2)
    assert not result.ok
    assert result.cause == "/readyz answered 503: loading model"


def test_unreachable_app_reports_the_connection_error() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    result = wait_healthy(
        "http://vm:8000", timeout=0.1, interval=0.01, transport=httpx.MockTransport(refuse)
    )
    assert not result.ok and "ConnectError: connection refused" in result.cause


def test_extra_canaries_are_checked_too() -> None:
    extra = (*DEFAULT_CANARIES, Canary("I don't love this.", "NEGATIVE"))
    result = wait_healthy(
        "http://vm:8000",
        extra,
        timeout=0.2,
        interval=0.01,
        transport=httpx.MockTransport(FakeApp()),
    )
    assert not result.ok and "I don't love this." in result.cause


def test_the_gate_asks_the_sentences_the_app_and_the_model_build_ask() -> None:
    """One list of readiness sentences: the app ships its own copy (it cannot import the deploy
    tool), so this keeps the three in step."""
    gate = [(c.text, c.label) for c in DEFAULT_CANARIES]
    assert gate == [(e.text, LABELS[e.label]) for e in READINESS] == list(APP_CANARIES)
