"""The UI is built after the model, while the JSON API already serves (app.late_ui).

The UI's build is held back here by a stand-in for `app.factory.ui_app` that waits for the test
to release it, so "before the UI is built" is a state the test controls, not a race.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from pathlib import Path

import app.factory
import app.late_ui
import pytest
from app.config import Settings
from app.services import Services
from fastapi import FastAPI
from fastapi.testclient import TestClient

Serve = Callable[[Settings], AbstractContextManager[TestClient]]


@pytest.fixture
def held_ui(monkeypatch: pytest.MonkeyPatch) -> Iterator[threading.Event]:
    """Set the returned event to let the UI's build go on; until then it is not built."""
    release = threading.Event()
    build = app.factory.ui_app

    def held(services: Services) -> FastAPI:
        release.wait()
        return build(services)

    monkeypatch.setattr(app.factory, "ui_app", held)
    yield release
    release.set()  # a failing test must not leave the builder thread waiting


def test_the_json_api_serves_before_the_ui_is_built(
    serve: Serve,
    sentiment_model_dir: Path,
    held_ui: threading.Event,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with serve(Settings(model=str(sentiment_model_dir), runtime="onnx")) as client:
        ready = client.get("/readyz")
        assert ready.status_code == 200
        assert ready.json()["ui"] == "starting"
        answer = client.post("/api/sentiment", json={"text": "I am so happy today!"})
        assert answer.json()["label"] == "POSITIVE"

        monkeypatch.setattr(app.late_ui, "UI_WAIT_SECONDS", 0.05)
        page = client.get("/")
        assert page.status_code == 503
        assert page.headers["retry-after"] == "2"
        assert page.json()["error"] == "ui_starting"
        assert "the JSON API already serves" in page.json()["detail"]

        monkeypatch.setattr(app.late_ui, "UI_WAIT_SECONDS", 300.0)
        held_ui.set()
        assert client.get("/").status_code == 200
        assert client.get("/readyz").json()["ui"] == "serving"


def test_a_ui_request_during_the_build_waits_and_gets_the_page(
    serve: Serve, sentiment_model_dir: Path, held_ui: threading.Event
) -> None:
    with serve(Settings(model=str(sentiment_model_dir), runtime="onnx")) as client:
        with ThreadPoolExecutor(1) as pool:
            page = pool.submit(client.get, "/")
            held_ui.set()
            response = page.result(timeout=300)
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/html")


def test_a_failed_ui_build_answers_503_and_the_api_keeps_serving(
    serve: Serve, sentiment_model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(services: Services) -> FastAPI:
        raise RuntimeError("no theme files")

    monkeypatch.setattr(app.factory, "ui_app", broken)
    with serve(Settings(model=str(sentiment_model_dir), runtime="onnx")) as client:
        page = client.get("/")
        assert page.status_code == 503
        assert page.json() == {
            "error": "ui_unavailable",
            "detail": "the UI failed to start: RuntimeError: no theme files; "
            "the JSON API still serves",
        }
        assert client.get("/readyz").json()["ui"] == "failed"
        answer = client.post("/api/sentiment", json={"text": "This is the worst day ever."})
        assert answer.json()["label"] == "NEGATIVE"
