"""The watchdog's probe: the deploy's health check, judged on labels, not on HTTP 200 alone."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import httpx

from mlopsdeploy.config import HostConfig
from mlopsdeploy.deployment.control.appspec import Check
from mlopsdeploy.deployment.control.probe import DEFAULT_CANARIES, Canary
from mlopsdeploy.watchdog.probe import app_spec_for, canaries_for, readiness_probe

CFG = HostConfig(name="vm1", address="10.213.9.2", own_key=Path("/nonexistent"), app_port=8010)


def app(labels: list[str], ready: int = 200) -> httpx.MockTransport:
    def handle(request: httpx.Request) -> httpx.Response:
        assert request.url.host == "10.213.9.2" and request.url.port == 8010
        if request.url.path == "/readyz":
            return httpx.Response(ready, json={"status": "ready", "model_version": "m1"})
        return httpx.Response(200, json={"results": [{"label": lbl} for lbl in labels]})

    return httpx.MockTransport(handle)


def test_right_labels_are_healthy() -> None:
    outcome = readiness_probe(CFG, DEFAULT_CANARIES, 1.0, app(["POSITIVE", "NEGATIVE"]))()
    assert outcome.ok
    assert outcome.detail == "ready, model m1"


def test_wrong_label_with_http_200_is_a_failure() -> None:
    outcome = readiness_probe(CFG, DEFAULT_CANARIES, 1.0, app(["POSITIVE", "POSITIVE"]))()
    assert not outcome.ok
    assert "expected NEGATIVE" in outcome.detail


def test_not_ready_and_unreachable_are_failures() -> None:
    assert not readiness_probe(CFG, DEFAULT_CANARIES, 1.0, app([], ready=503))().ok

    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    outcome = readiness_probe(CFG, DEFAULT_CANARIES, 1.0, httpx.MockTransport(refuse))()
    assert (outcome.ok, outcome.detail) == (False, "ConnectError: connection refused")


def test_canaries_include_the_model_manifest_ones(tmp_path: Path) -> None:
    assert canaries_for(tmp_path) == DEFAULT_CANARIES
    manifest = {"canaries": [{"text": "Meh.", "expected": "NEGATIVE"}]}
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    assert canaries_for(tmp_path) == (*DEFAULT_CANARIES, Canary("Meh.", "NEGATIVE"))


def test_a_host_with_its_own_app_is_probed_with_that_apps_checks() -> None:
    example = Path(__file__).resolve().parents[4] / "examples" / "gradio-app"
    assert app_spec_for(CFG) is None  # the bundled app: canaries
    spec = app_spec_for(replace(CFG, app_dir=example))
    assert spec is not None and spec.checks[0].target == "/predict"
    http_check = Check("api", "http", "/api/sentiment", "contains", "POSITIVE")
    own = replace(spec, checks=(http_check,))
    # Right answer with the canaries' labels wrong: only the app's own check counts.
    assert readiness_probe(CFG, DEFAULT_CANARIES, 1.0, app(["POSITIVE"]), spec=own)().ok
    wrong = readiness_probe(CFG, DEFAULT_CANARIES, 1.0, app(["NEGATIVE"]), spec=own)()
    assert not wrong.ok and wrong.detail.startswith("check 'api' (/api/sentiment)")
