"""The ONNX runtime of the local product: no torch in the process, the same answers as torch.

On the trained offline model, which the build exports to ONNX: a started app on ONNX serves the
API and the UI without torch or transformers in `sys.modules`, and both runtimes give the same
labels (scores nearly equal) for the same texts, batched the same way.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path

import pytest
from app.config import Settings
from app.onnx_classifier import onnx_file
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

Serve = Callable[[Settings], AbstractContextManager[TestClient]]

TEXTS = [
    "I am so happy today!",
    "This is the worst day ever.",
    "Not bad at all.",
    "I don't love this.",
    "The food was not good.",
    "What a wonderful surprise, thank you so much!",
    "The delivery came late and the box was crushed.",
    "I can't wait to see you again",
    "meh",
    "The staff were friendly but the room was dirty.",
]

# Runs in a fresh interpreter: the test process itself has torch imported by other tests.
STARTED_APP = """
import json, sys
from fastapi.testclient import TestClient
from app.config import parse_settings
from app.factory import create_app

with TestClient(create_app(parse_settings(sys.argv[1:], {}))) as client:
    ready = client.get("/readyz")
    api = client.post("/api/sentiment", json={"text": "I love this product, it works perfectly."})
    call = client.post("/gradio_api/call/classify", json={"data": ["Not bad at all."]})
    ui = client.get(f"/gradio_api/call/classify/{call.json()['event_id']}")
    heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "transformers"))
print(json.dumps({"ready": ready.status_code, "api": api.json(), "ui": ui.text, "heavy": heavy}))
"""


@pytest.fixture(scope="module")
def onnx_model_dir(sentiment_model_dir: Path) -> Path:
    assert onnx_file(str(sentiment_model_dir)), "the built model must carry its ONNX export"
    return sentiment_model_dir


def test_a_started_onnx_app_serves_without_torch_or_transformers(onnx_model_dir: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", STARTED_APP, "--model", str(onnx_model_dir)],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["ready"] == 200
    assert result["api"]["label"] == "POSITIVE"
    assert "POSITIVE" in result["ui"] and "event: complete" in result["ui"]
    assert result["heavy"] == []


def batches(client: TestClient) -> tuple[float, float]:
    """(forward passes, texts in them) so far, from the app's batch size histogram."""
    families = text_string_to_metric_families(client.get("/metrics").text)
    [family] = [f for f in families if f.name == "app_classifier_batch_size"]
    totals = {s.name.rsplit("_", 1)[-1]: s.value for s in family.samples}
    return totals["count"], totals["sum"]


def test_both_runtimes_give_the_same_labels_and_batch_alike(
    serve: Serve, onnx_model_dir: Path
) -> None:
    answers = {}
    for runtime in ("onnx", "torch"):
        with serve(Settings(model=str(onnx_model_dir), runtime=runtime)) as client:
            assert client.get("/readyz").status_code == 200
            passes, texts = batches(client)
            answer = client.post("/api/sentiment", json={"texts": TEXTS})
            assert answer.status_code == 200
            answers[runtime] = answer.json()["results"]
            assert batches(client) == (passes + 1, texts + len(TEXTS))
    assert [r["label"] for r in answers["onnx"]] == [r["label"] for r in answers["torch"]]
    assert [r["score"] for r in answers["onnx"]] == pytest.approx(
        [r["score"] for r in answers["torch"]], abs=0.05
    )
