"""Whatever a client sends to /api/sentiment, the answer is a well-formed 2xx or 4xx, never a 5xx.

Hypothesis generates the bodies: raw bytes, arbitrary JSON, and objects whose "text"/"texts" hold
anything JSON can (lone surrogate escapes, control characters, numbers, nesting, huge lists),
including integers longer than the 4300 digits Python will turn into an int.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi.testclient import TestClient
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

any_char_text = st.text(st.characters(exclude_categories=()), max_size=70)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | any_char_text,
    lambda children: (
        st.lists(children, max_size=6)
        | st.dictionaries(st.sampled_from(["text", "texts", "x"]), children, max_size=3)
    ),
    max_leaves=12,
)
# Texts the service should accept: no surrogates, within the test app's limits (50 chars, 4 texts).
plain_text = st.text(st.characters(codec="utf-8"), min_size=1, max_size=50)
text_values = any_char_text | st.sampled_from(["", " ", "\n\t", "ok"]) | json_values
# `json.dumps` refuses to write integers of more than 4300 digits (and `json.loads` to read them),
# so such bodies are written as text: a huge integer where a text, a list item or the body goes.
huge_integers = st.builds(
    lambda sign, digits: sign + "9" * digits, st.sampled_from(["", "-"]), st.integers(4301, 5000)
)
huge_integer_bodies = st.builds(
    str.format,
    st.sampled_from(['{{"text": {}}}', '{{"texts": ["ok", {}]}}', "{}", '{{"x": [{}]}}']),
    huge_integers,
).map(str.encode)
bodies = st.one_of(
    st.binary(max_size=120),
    huge_integer_bodies,
    json_values.map(json.dumps).map(str.encode),
    st.builds(lambda text: {"text": text}, text_values).map(json.dumps).map(str.encode),
    st.builds(lambda texts: {"texts": texts}, st.lists(text_values, max_size=6) | json_values)
    .map(json.dumps)
    .map(str.encode),
    st.builds(lambda text: {"text": text}, plain_text).map(json.dumps).map(str.encode),
    st.builds(lambda texts: {"texts": texts}, st.lists(plain_text, min_size=1, max_size=4))
    .map(json.dumps)
    .map(str.encode),
)


def assert_well_formed(request: Any, status: int, body: Any) -> None:
    assert status < 500, (request, status, body)
    assert isinstance(body, dict)
    if status == 200:
        results = body.get("results", [body])
        if "results" in body:
            assert len(results) == len(json.loads(request)["texts"])
        for result in results:
            assert result["label"] in {"POSITIVE", "NEGATIVE"}
            assert 0.0 <= result["score"] <= 1.0
    else:
        assert 400 <= status < 500
        assert body["error"] == "invalid_input"
        assert isinstance(body["detail"], str) and body["detail"]


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=bodies)
def test_generated_bodies_never_get_a_5xx(positive_client: TestClient, body: bytes) -> None:
    response = positive_client.post(
        "/api/sentiment", content=body, headers={"content-type": "application/json"}
    )
    event(f"status {response.status_code}")
    assert_well_formed(body, response.status_code, response.json())
