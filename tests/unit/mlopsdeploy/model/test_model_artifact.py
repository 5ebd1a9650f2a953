"""The built model itself, loaded the way the app loads it (both runtimes): labels, canaries,
agreement of the ONNX export with torch, layout, modes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mlopsdeploy.model import read_manifest, verify
from mlopsdeploy.model.agreement import MIN_AGREEMENT, onnx_labels
from mlopsdeploy.model.build import MIN_TWEET_ACCURACY
from mlopsdeploy.model.canaries import CANARIES
from mlopsdeploy.model.recipe import LABELS


def test_pipeline_gets_every_canary_right(sentiment_model_dir: Path) -> None:
    pipeline = pytest.importorskip("transformers").pipeline
    classifier = pipeline("sentiment-analysis", model=str(sentiment_model_dir), device="cpu")
    predicted = [result["label"] for result in classifier([c.text for c in CANARIES])]
    assert predicted == [LABELS[c.label] for c in CANARIES]


def test_artifact_is_intact_and_passed_the_gate(sentiment_model_dir: Path) -> None:
    assert verify(sentiment_model_dir) == []
    manifest = read_manifest(sentiment_model_dir)
    assert manifest["metrics"]["held_out_tweets"]["accuracy"] >= MIN_TWEET_ACCURACY
    assert manifest["metrics"]["canaries"]["passed"] == len(CANARIES)
    assert manifest["version"].startswith("minilm-sentiment-")


def test_weights_are_fp16_on_disk_and_float32_on_load(sentiment_model_dir: Path) -> None:
    config = json.loads((sentiment_model_dir / "config.json").read_text())
    assert config["dtype"] == "float32"
    assert config["id2label"] == {"0": "NEGATIVE", "1": "POSITIVE"}
    weights = sentiment_model_dir / "model.safetensors"
    header_size = int.from_bytes(weights.read_bytes()[:8], "little")
    header = json.loads(weights.read_bytes()[8 : 8 + header_size])
    dtypes = {entry["dtype"] for name, entry in header.items() if name != "__metadata__"}
    assert dtypes == {"F16"}


def test_files_are_world_readable(sentiment_model_dir: Path) -> None:
    for path in sentiment_model_dir.iterdir():
        assert path.stat().st_mode & 0o777 == 0o644, path.name


def test_shipped_onnx_files_agree_with_torch(sentiment_model_dir: Path) -> None:
    manifest = read_manifest(sentiment_model_dir)
    shipped = [
        figures
        for figures in manifest["onnx"]["variants"].values()
        if figures["file"] in manifest["files"]
    ]
    assert manifest["onnx"]["serves"] in [figures["file"] for figures in shipped]
    for figures in shipped:
        assert figures["held_out_tweets"]["agreement"] >= MIN_AGREEMENT, figures["file"]
        assert figures["held_out_tweets"]["n"] == manifest["metrics"]["held_out_tweets"]["n"]
        assert figures["canaries"] == {"n": len(CANARIES), "agree": len(CANARIES)}


def test_served_onnx_file_gets_every_canary_right(sentiment_model_dir: Path) -> None:
    manifest = read_manifest(sentiment_model_dir)
    labels = onnx_labels(
        sentiment_model_dir, manifest["onnx"]["serves"], [c.text for c in CANARIES]
    )
    assert labels == [c.label for c in CANARIES]
    assert verify(sentiment_model_dir, runtime="onnx") == []
