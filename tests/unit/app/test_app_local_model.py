"""Which runtime serves a model: ONNX for a model dir that carries an ONNX file, else torch."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path

from app.config import Settings
from app.local_model import resolve_runtime
from fastapi.testclient import TestClient

Serve = Callable[[Settings], AbstractContextManager[TestClient]]


def test_auto_picks_onnx_only_for_a_dir_with_an_onnx_file(tmp_path: Path) -> None:
    assert resolve_runtime(str(tmp_path), "auto") == "torch"
    (tmp_path / "model.onnx").write_bytes(b"graph")
    assert resolve_runtime(str(tmp_path), "auto") == "onnx"
    assert resolve_runtime(str(tmp_path), "torch") == "torch"
    assert resolve_runtime("distilbert-base-uncased-finetuned-sst-2-english", "auto") == "torch"


def test_onnx_for_a_model_without_onnx_file_is_not_ready_and_says_why(
    serve: Serve, always_positive_model: Path
) -> None:
    with serve(Settings(model=str(always_positive_model), runtime="onnx")) as client:
        answer = client.get("/readyz")
        assert answer.status_code == 503
        assert "no ONNX file (model.int8.onnx or model.onnx)" in answer.json()["reason"]
        assert client.get("/livez").status_code == 200
