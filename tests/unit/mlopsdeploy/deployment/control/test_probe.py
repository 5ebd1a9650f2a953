from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence

import httpx
from app.classifier import Prediction
from app.readiness import CANARIES as APP_CANARIES
from app.readiness import canary_failures

from mlopsdeploy.deployment.control.probe import DEFAULT_CANARIES, Canary, wait_healthy
from mlopsdeploy.model.canaries import READINESS
from mlopsdeploy.model.recipe import LABELS


class FakeApp:
    """An httpx MockTransport handler standing in for the app's /readyz and /api/sentiment."""

    def __init__(
        self,
        not_ready_rounds: int = 0,
        flip: bool = False,
        status: int = 200,
        reason: str = "loading model",
    ) -> None:
        self.not_ready_rounds = not_ready_rounds
        self.reason = reason
        self.flip = flip
        self.status = status
        self.calls = 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/readyz":
            self.calls += 1
            if self.calls <= self.not_ready_rounds:
                return httpx.Response(503, json={"status": "not ready", "reason": self.reason})
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


def test_app_not_ready_over_a_wrong_canary_label_fails_at_once() -> None:
    """The app checks the canaries itself once its model is loaded, and its /readyz then says
    which it got wrong: as final as the probe's own check (the gate used to wait out its
    timeout on it, 120 s per refused release)."""

    async def swapped(texts: Sequence[str]) -> list[Prediction]:
        return [Prediction("NEGATIVE" if "happy" in t else "POSITIVE", 0.99) for t in texts]

    reason = "; ".join(asyncio.run(canary_failures(swapped)))  # in the app's own words
    app = FakeApp(not_ready_rounds=10**6, reason=reason)
    result = probe(app, timeout=60)
    assert not result.ok
    assert result.cause == f"/readyz answered 503: {reason}"
    assert "'I am so happy today!' was classified NEGATIVE, expected POSITIVE" in result.cause
    assert app.calls == 1


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
