"""The Gradio UI mounted at "/": two tabs, examples, and the same answers and errors as the API."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from app.factory import UI_PROGRESS_POLL_S, UI_QUEUE_POLL_S
from app.late_ui import LateUi
from app.ui import EXAMPLES
from fastapi.testclient import TestClient

UiCall = Callable[..., list[tuple[str, Any]]]


def mounted(app: Any) -> list[Any]:
    """The ASGI apps mounted in `app`'s routes."""
    return [route.app for route in app.routes if hasattr(route, "app")]


def test_the_page_is_served_at_the_root(positive_client: TestClient) -> None:
    response = positive_client.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")


def test_two_tabs_with_examples_and_no_analytics(positive_client: TestClient) -> None:
    config = positive_client.get("/config").json()
    tabs = [c["props"]["label"] for c in config["components"] if c["type"] == "tabitem"]
    assert tabs == ["Analyze Sentiment (Local Model)", "Generate Positive Thought (API Model)"]
    [examples] = [c["props"]["samples"] for c in config["components"] if c["type"] == "dataset"]
    assert [sample[0] for sample in examples] == EXAMPLES
    assert config["analytics_enabled"] is False


def test_the_json_routes_are_not_shadowed_by_the_ui(positive_client: TestClient) -> None:
    assert positive_client.get("/livez").json() == {"status": "alive"}
    assert positive_client.get("/metrics").headers["content-type"].startswith("text/plain")


def test_classify_shows_the_model_label(positive_client: TestClient, call_ui: UiCall) -> None:
    event, [label] = call_ui(positive_client, "classify", "I am so happy today!")[-1]
    assert event == "complete"
    assert label["label"] == "POSITIVE"
    assert label["confidences"][0]["label"] == "POSITIVE"


def test_classify_explains_bad_input(positive_client: TestClient, call_ui: UiCall) -> None:
    event, data = call_ui(positive_client, "classify", "   ")[-1]
    assert event == "error"
    assert data["error"] == "The text is empty or only whitespace"


def test_the_trained_model_labels_the_examples(real_client: TestClient, call_ui: UiCall) -> None:
    labels = [call_ui(real_client, "classify", text)[-1][1][0]["label"] for text in EXAMPLES[:2]]
    assert labels == ["POSITIVE", "NEGATIVE"]


def test_the_idle_ui_queue_does_not_spin_the_event_loop(positive_client: TestClient) -> None:
    # gradio's queue looks for UI events every 1 ms by default: ~1000 wake-ups a second of the
    # loop that serves the JSON API, in every idle worker (9 % of a core measured at load 4.5).
    positive_client.get("/")  # the UI is built
    [late_ui] = [app for app in mounted(positive_client.app) if isinstance(app, LateUi)]
    assert late_ui._app is not None
    [gradio_app] = [app for app in mounted(late_ui._app) if hasattr(app, "get_blocks")]
    queue = gradio_app.get_blocks()._queue
    assert queue.sleep_when_free == UI_QUEUE_POLL_S >= 0.05
    assert queue.progress_update_sleep_when_free == UI_PROGRESS_POLL_S
