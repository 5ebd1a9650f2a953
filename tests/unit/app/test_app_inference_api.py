"""The API product against the stand-in Inference API, in every mode it can fail in.

Each failure must give the JSON client a 502/503/504 naming the cause and the UI the same message,
while the local product keeps answering; the token must never show up anywhere.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import pytest
from app.config import Settings
from fastapi.testclient import TestClient
from pydantic import SecretStr

from mlopsdeploy.testing.standin import StandIn

Serve = Callable[[Settings], AbstractContextManager[TestClient]]
UiCall = Callable[..., list[tuple[str, Any]]]

FAILURES = [
    ("overloaded", 503, "api_overloaded", "overloaded (HTTP 503)"),
    ("unauthorized", 502, "api_unauthorized", "rejected the token (HTTP 401)"),
    ("slow", 504, "api_timeout", "did not answer within 1 s"),
    ("down", 502, "api_unreachable", "Cannot reach the Inference API at http://127.0.0.1:"),
]


@pytest.fixture(scope="module")
def standin(api_token: str) -> Iterator[StandIn]:
    with StandIn(token=api_token, slow_seconds=10) as standin:
        yield standin


@pytest.fixture(scope="module")
def client(
    serve: Serve, standin: StandIn, always_positive_model: Path, api_token: str
) -> Iterator[TestClient]:
    settings = Settings(
        model=str(always_positive_model),
        api_model=standin.url,
        hf_token=SecretStr(api_token),
        api_timeout=1.0,
    )
    with serve(settings) as client:
        yield client


@pytest.fixture(autouse=True)
def standin_back_to_ok(standin: StandIn) -> Iterator[None]:
    yield
    standin.mode = "ok"


def test_a_prompt_is_answered_through_the_api(client: TestClient) -> None:
    # The stand-in answers only requests bearing the app's token: this also proves it is sent.
    response = client.post("/api/generate", json={"prompt": "Name a colour."})
    assert response.status_code == 200
    assert response.json() == {"text": "Stand-in answer to: Name a colour."}


def test_without_a_prompt_the_api_is_asked_for_a_positive_thought(client: TestClient) -> None:
    for response in (client.post("/api/generate"), client.post("/api/generate", json={})):
        assert response.status_code == 200
        assert "uplifting thought" in response.json()["text"]


def test_the_ui_streams_the_answer_as_it_grows(client: TestClient, call_ui: UiCall) -> None:
    events = call_ui(client, "generate", "Say hi.")
    texts = [data[0] for event, data in events if event == "generating"]
    assert texts[0] == "Stand-in"
    assert texts[-1] == "Stand-in answer to: Say hi."
    assert all(later.startswith(earlier) for earlier, later in itertools.pairwise(texts))
    assert events[-1] == ("complete", ["Stand-in answer to: Say hi."])


def test_a_bad_prompt_is_a_4xx(client: TestClient) -> None:
    response = client.post("/api/generate", json={"prompt": 42})
    assert response.status_code == 422
    assert response.json() == {
        "error": "invalid_input",
        "detail": '"prompt" must be a string, not a number',
    }


@pytest.mark.parametrize(("mode", "status", "kind", "message"), FAILURES)
def test_an_api_failure_is_named_and_the_local_product_keeps_working(
    client: TestClient, standin: StandIn, mode: str, status: int, kind: str, message: str
) -> None:
    standin.mode = mode
    with ThreadPoolExecutor(max_workers=1) as pool:
        generating = pool.submit(client.post, "/api/generate", json={"prompt": "hello"})
        local = client.post("/api/sentiment", json={"text": "I am so happy today!"})
        assert local.status_code == 200
        assert local.json()["label"] == "POSITIVE"
        response = generating.result(timeout=60)
    assert response.status_code == status
    assert response.json()["error"] == kind
    assert message in response.json()["detail"]
    assert client.get("/livez").status_code == 200


@pytest.mark.parametrize(("mode", "status", "kind", "message"), FAILURES)
def test_the_ui_shows_the_same_message(
    client: TestClient,
    standin: StandIn,
    call_ui: UiCall,
    mode: str,
    status: int,
    kind: str,
    message: str,
) -> None:
    standin.mode = mode
    event, data = call_ui(client, "generate", "hello")[-1]
    assert event == "error"
    assert message in data["error"]


def test_the_api_recovers_when_the_stand_in_does(client: TestClient, standin: StandIn) -> None:
    standin.mode = "down"
    assert client.post("/api/generate", json={}).status_code == 502
    standin.mode = "ok"
    assert client.post("/api/generate", json={"prompt": "back?"}).status_code == 200


def test_the_token_never_appears_in_logs_answers_or_metrics(
    client: TestClient,
    standin: StandIn,
    call_ui: UiCall,
    api_token: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    seen: list[str] = []
    with caplog.at_level(logging.DEBUG):
        for mode in ("ok", "overloaded", "unauthorized", "slow", "down"):
            standin.mode = mode
            seen.append(client.post("/api/generate", json={"prompt": "x"}).text)
            seen.append(repr(call_ui(client, "generate", "x")))
        seen.append(client.get("/metrics").text)
        seen.append(client.get("/readyz").text)
    assert any("api_unauthorized" in text for text in seen)
    for text in [*seen, caplog.text]:
        assert api_token not in text


def test_the_stand_in_saw_one_request_per_call(client: TestClient, standin: StandIn) -> None:
    before = standin.requests
    client.post("/api/generate", json={"prompt": "count me"})
    assert standin.requests == before + 1


@pytest.mark.parametrize(
    ("has_token", "has_endpoint", "setting"),
    [
        (False, True, "HF_TOKEN is not set"),
        (True, False, "APP_API_MODEL (--api-model) is empty"),
    ],
)
def test_without_a_token_or_endpoint_the_api_product_names_the_setting(
    serve: Serve,
    standin: StandIn,
    always_positive_model: Path,
    api_token: str,
    call_ui: UiCall,
    has_token: bool,
    has_endpoint: bool,
    setting: str,
) -> None:
    settings = Settings(
        model=str(always_positive_model),
        api_model=standin.url if has_endpoint else "",
        hf_token=SecretStr(api_token) if has_token else None,
    )
    before = standin.requests
    with serve(settings) as client:
        response = client.post("/api/generate", json={"prompt": "hello"})
        assert response.status_code == 503
        assert response.json()["error"] == "not_configured"
        detail = response.json()["detail"]
        assert detail.startswith("The Inference API is not configured: ") and setting in detail
        event, data = call_ui(client, "generate", "hello")[-1]
        assert (event, data["error"]) == ("error", detail)
        notices = [c["props"].get("value") for c in client.get("/config").json()["components"]]
        assert f"**{detail}**" in notices  # shown in the API tab before anyone clicks
        assert client.post("/api/sentiment", json={"text": "fine"}).status_code == 200
    assert standin.requests == before  # nothing was sent
