from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import httpx
import pytest

from mlopsdeploy.deployment.control.appspec import AppSpec, Check
from mlopsdeploy.deployment.control.probe import wait_healthy

POSITIVE = Check("happy", "http", "/api/sentiment", "jsonpath", "POSITIVE", "$.results[0].label")


def http_app(label: str, ready: int = 200) -> httpx.MockTransport:
    def handle(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/health":
            return httpx.Response(ready, text="ok" if ready == 200 else "starting")
        assert request.method == "POST"
        texts = json.loads(request.content)["texts"]
        return httpx.Response(200, json={"results": [{"label": label} for _ in texts]})

    return httpx.MockTransport(handle)


def spec(*checks: Check, url: str | None = "/health", url_alone: bool = False) -> AppSpec:
    return AppSpec(Path("."), ready_url=url, url_alone=url_alone, checks=checks)


def probe(app: httpx.MockTransport, wanted: AppSpec, timeout: float = 5.0):
    return wait_healthy("http://app", timeout=timeout, interval=0.01, transport=app, spec=wanted)


def test_http_check_with_the_right_label_is_healthy() -> None:
    body = {"texts": ["I am so happy today!"]}
    assert probe(http_app("POSITIVE"), spec(replace(POSITIVE, method="POST", body=body))).ok


def test_a_wrong_label_is_refused_at_once_naming_the_check() -> None:
    body = {"texts": ["I am so happy today!"]}
    result = probe(http_app("NEGATIVE"), spec(replace(POSITIVE, method="POST", body=body)), 60)
    assert not result.ok
    assert result.cause == (
        "check 'happy' (/api/sentiment): $.results[0].label is 'NEGATIVE', expected 'POSITIVE'"
    )
    assert result.seconds < 60  # final: no waiting out the timeout for a wrong answer


def test_readiness_url_must_answer_200_and_alone_is_healthy_only_when_declared() -> None:
    starting = probe(http_app("POSITIVE", ready=503), spec(url_alone=True), timeout=0.1)
    assert not starting.ok and starting.cause.startswith("/health answered 503")
    assert probe(http_app("POSITIVE"), spec(url_alone=True)).ok


def test_a_spec_grants_its_app_a_longer_first_start() -> None:
    rounds = iter(range(1000))

    def starting_for_five_rounds(request: httpx.Request) -> httpx.Response:
        return httpx.Response(503 if next(rounds) < 5 else 200)

    app = httpx.MockTransport(starting_for_five_rounds)
    patient = replace(spec(url_alone=True), start_timeout=60.0)
    assert wait_healthy("http://app", timeout=0.0, interval=0.01, transport=app, spec=patient).ok


class Gradio:
    """A real Gradio app on loopback whose /predict labels like the example app's."""

    def __init__(self) -> None:
        import gradio as gr

        def analyze(text: str) -> dict[str, float]:
            return {"POSITIVE" if "happy" in text else "NEGATIVE": 0.99}

        with gr.Blocks() as self.demo:
            text = gr.Textbox()
            label = gr.Label()
            gr.Button().click(analyze, inputs=text, outputs=label, api_name="predict")
        _, self.url, _ = self.demo.launch(
            server_name="127.0.0.1", server_port=None, prevent_thread_lock=True, quiet=True
        )


@pytest.fixture(scope="module")
def gradio_app() -> Iterator[Gradio]:
    app = Gradio()
    yield app
    app.demo.close()


def gradio_check(text: str, label: str) -> Check:
    return Check("mood", "gradio", "/predict", "label", label, args=(text,))


def test_gradio_endpoint_label_is_checked_through_its_client(gradio_app: Gradio) -> None:
    url = gradio_app.url.rstrip("/")
    wanted = spec(gradio_check("I am so happy today!", "POSITIVE"), url=None)
    assert wait_healthy(url, timeout=30, spec=wanted).ok
    wrong = spec(gradio_check("I am so happy today!", "NEGATIVE"), url=None)
    result = wait_healthy(url, timeout=30, spec=wrong)
    assert result.cause == "check 'mood' (/predict): label POSITIVE, expected NEGATIVE"


def test_an_unreachable_gradio_app_is_not_healthy_and_says_why() -> None:
    wanted = spec(gradio_check("I am so happy today!", "POSITIVE"), url=None)
    result = wait_healthy("http://127.0.0.1:9", timeout=0.2, interval=0.05, spec=wanted)
    assert not result.ok
    assert result.cause.startswith("Gradio endpoint /predict did not answer:")
