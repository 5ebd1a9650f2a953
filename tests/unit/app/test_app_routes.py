"""The JSON API: probes, /api/sentiment answers and its 4xx errors, metrics after traffic."""

from __future__ import annotations

import json
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path

import pytest
from app.config import Settings
from app.readiness import CANARIES
from app.validation import Limits
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

Serve = Callable[[Settings], AbstractContextManager[TestClient]]


def test_livez_answers_while_the_process_is_up(positive_client: TestClient) -> None:
    response = positive_client.get("/livez")
    assert (response.status_code, response.json()) == (200, {"status": "alive"})


def test_one_text_gets_a_label_and_a_score(positive_client: TestClient) -> None:
    response = positive_client.post("/api/sentiment", json={"text": "I am so happy today!"})
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"label", "score"}
    assert body["label"] == "POSITIVE"  # the only answer this tiny model gives
    assert 0.5 < body["score"] <= 1.0


def test_many_texts_get_one_result_each(positive_client: TestClient) -> None:
    texts = ["one", "two", "three"]
    response = positive_client.post("/api/sentiment", json={"texts": texts})
    assert response.status_code == 200
    results = response.json()["results"]
    assert len(results) == len(texts)
    assert all(set(result) == {"label", "score"} for result in results)


def test_long_text_within_the_limit_is_classified_whatever_the_model_can_embed(
    positive_client: TestClient, small_limits: Limits
) -> None:
    # 50 one-letter words are more tokens than the tiny model's 32 positions: truncation must cope.
    text = " ".join("a" * small_limits.max_text_chars)[: small_limits.max_text_chars]
    response = positive_client.post("/api/sentiment", json={"text": text})
    assert response.status_code == 200


TOO_DEEP = b"[" * 5000


@pytest.mark.parametrize(
    ("body", "status", "detail"),
    [
        (b"", 400, "the body is empty"),
        (b"{", 400, "not valid JSON"),
        (b'{"text": "caf\xe9"}', 400, "not valid UTF-8"),
        (TOO_DEEP, 400, "nested too deeply"),
        (b'{"text": ' + b"9" * 4301 + b"}", 400, "a number of more than 4300 digits"),
        (b"[1, 2]", 422, "must be a JSON object, not a list"),
        (b"{}", 422, 'exactly one of "text"'),
        (b'{"text": "a", "texts": ["b"]}', 422, 'exactly one of "text"'),
        (b'{"text": 3}', 422, '"text" must be a string, not a number'),
        (b'{"text": null}', 422, '"text" must be a string, not null'),
        (b'{"text": " \\n\\t "}', 422, '"text" is empty or only whitespace'),
        (b'{"text": "' + b"x" * 51 + b'"}', 422, '"text" has 51 characters; the maximum is 50'),
        (b'{"text": "\\ud800"}', 422, '"text" is not valid Unicode'),
        (b'{"texts": "abc"}', 422, '"texts" must be a list of strings, not a string'),
        (b'{"texts": []}', 422, '"texts" is empty'),
        (b'{"texts": ["a", "b", "c", "d", "e"]}', 422, '"texts" has 5 items; the maximum is 4'),
        (b'{"texts": ["ok", 7]}', 422, '"texts"[1] must be a string, not a number'),
        (b'{"texts": ["ok", ""]}', 422, '"texts"[1] is empty or only whitespace'),
        (b'{"text": "' + b"x" * 6000 + b'"}', 413, "the body is larger than"),
    ],
)
def test_bad_input_gets_a_4xx_naming_the_problem(
    positive_client: TestClient, body: bytes, status: int, detail: str
) -> None:
    response = positive_client.post(
        "/api/sentiment", content=body, headers={"content-type": "application/json"}
    )
    assert response.status_code == status
    assert response.json()["error"] == "invalid_input"
    assert detail in response.json()["detail"]
    assert positive_client.get("/livez").status_code == 200


def test_a_wrong_model_is_not_ready_and_the_failing_canary_is_named(
    positive_client: TestClient, always_positive_model: Path
) -> None:
    response = positive_client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "not ready"
    assert body["model"] == str(always_positive_model)
    negative_canary = next(text for text, label in CANARIES if label == "NEGATIVE")
    assert negative_canary in body["reason"]
    assert "classified POSITIVE, expected NEGATIVE" in body["reason"]


def test_the_other_wrong_model_fails_the_other_canary(
    serve: Serve, always_negative_model: Path
) -> None:
    with serve(Settings(model=str(always_negative_model))) as client:
        response = client.get("/readyz")
        assert response.status_code == 503
        reason = response.json()["reason"]
        assert "'I am so happy today!' was classified NEGATIVE, expected POSITIVE" in reason
        assert "worst day" not in reason


def test_a_model_that_cannot_load_leaves_the_process_alive_and_not_ready(
    serve: Serve, tmp_path: Path
) -> None:
    missing = tmp_path / "no-model-here"
    with serve(Settings(model=str(missing))) as client:
        assert client.get("/livez").status_code == 200
        ready = client.get("/readyz")
        assert ready.status_code == 503
        assert "failed to load" in ready.json()["reason"]
        answer = client.post("/api/sentiment", json={"text": "hello"})
        assert answer.status_code == 503
        assert answer.json()["error"] == "model_unavailable"


def samples(client: TestClient) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    text = client.get("/metrics").text
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_metrics_count_requests_labels_errors_and_latency(positive_client: TestClient) -> None:
    before = samples(positive_client)
    positive_client.post("/api/sentiment", json={"texts": ["a", "b"]})
    positive_client.post("/api/sentiment", json={"text": "c"})
    positive_client.post("/api/sentiment", content=b"not json")
    after = samples(positive_client)

    def grew(name: str, **labels: str) -> float:
        key = (name, frozenset(labels.items()))
        return after.get(key, 0.0) - before.get(key, 0.0)

    route = {"route": "/api/sentiment", "method": "POST"}
    assert grew("app_http_requests_total", **route, status="200") == 2
    assert grew("app_http_requests_total", **route, status="400") == 1
    assert grew("app_sentiment_predictions_total", label="POSITIVE") == 3
    assert grew("app_errors_total", kind="invalid_input") == 1
    assert grew("app_http_request_duration_seconds_count", route="/api/sentiment") == 3
    assert grew("app_classifier_batch_size_count") >= 2


def test_metrics_are_prometheus_text(positive_client: TestClient) -> None:
    response = positive_client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert "# TYPE app_http_requests_total counter" in response.text


def test_the_trained_model_is_ready_and_names_its_version(
    real_client: TestClient, sentiment_model_dir: Path
) -> None:
    response = real_client.get("/readyz")
    assert response.status_code == 200
    manifest = json.loads((sentiment_model_dir / "manifest.json").read_text())
    body = response.json()
    assert body.pop("ui") in {"starting", "serving"}  # the UI is built after the model
    assert body == {
        "status": "ready",
        "model": str(sentiment_model_dir),
        "model_version": manifest["version"],
    }


def test_the_trained_model_labels_the_examples_in_order(real_client: TestClient) -> None:
    texts = ["I am so happy today!", "This is the worst day ever.", "What a wonderful gift!"]
    response = real_client.post("/api/sentiment", json={"texts": texts})
    assert response.status_code == 200
    labels = [result["label"] for result in response.json()["results"]]
    assert labels == ["POSITIVE", "NEGATIVE", "POSITIVE"]


def test_the_trained_model_answers_one_text(real_client: TestClient) -> None:
    response = real_client.post("/api/sentiment", json={"text": "This is the worst day ever."})
    assert response.json()["label"] == "NEGATIVE"
