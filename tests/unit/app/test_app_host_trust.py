"""The API product on a host whose new SSH key its owner has not confirmed (the deploy withheld
the token and set APP_AWAITING_HOST_TRUST): a clear 503, the local product unaffected."""

from __future__ import annotations

from pathlib import Path

import pytest
from app.config import Settings
from conftest import ServeInProcess

FINGERPRINT = "SHA256:rulRQBWPTXlyIarVhNhLzObJWXOFIsHOXY+HVV3lsvg"


def test_api_product_answers_awaiting_host_trust(
    serve: ServeInProcess, always_positive_model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("APP_AWAITING_HOST_TRUST", FINGERPRINT)
    settings = Settings(
        model=str(always_positive_model), api_model="http://127.0.0.1:9", hf_token=None
    )
    with serve(settings) as client:
        answer = client.post("/api/generate", json={"prompt": "hello"})
        assert answer.status_code == 503
        assert answer.json()["error"] == "awaiting_host_trust"
        assert FINGERPRINT in answer.json()["detail"]
        assert "mlopsdeploy trust" in answer.json()["detail"]
        assert client.post("/api/sentiment", json={"text": "fine"}).status_code == 200
