"""Score a model directory the way users run it: through `transformers.pipeline`.

The numbers in the manifest and in `evaluate DIR` come from the saved artifact loaded by
pipeline(), not from the in-memory training model, so fp16 storage or a tokenizer mistake
would show up in them. VADER and the majority class are printed beside them as baselines.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlopsdeploy.model.canaries import CANARIES
from mlopsdeploy.model.dataset import Splits
from mlopsdeploy.model.recipe import LABELS, Example

BATCH = 64


@dataclass
class Evaluation:
    """Scores for the manifest; `labels` keeps torch's label per text of each set, which the
    ONNX agreement is measured against."""

    metrics: dict[str, dict[str, float | int]] = field(default_factory=dict)
    canaries: list[dict[str, Any]] = field(default_factory=list)
    labels: dict[str, list[int]] = field(default_factory=dict)


def classify(model_dir: Path, texts: list[str]) -> list[int]:
    """Label indices for `texts`, fed shortest-first so each batch pads little."""
    from transformers import logging as hf_logging
    from transformers import pipeline

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    classifier = pipeline("text-classification", model=str(model_dir), device="cpu")
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    outputs = classifier([texts[i] for i in order], batch_size=BATCH, truncation=True)
    labels = [0] * len(texts)
    for i, output in zip(order, outputs, strict=True):
        labels[i] = int(str(output["label"]).upper() == LABELS[1])
    return labels


def vader_labels(texts: list[str]) -> list[int]:
    """VADER's verdict: POSITIVE when the compound score is above zero."""
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    analyzer = SentimentIntensityAnalyzer()
    return [int(analyzer.polarity_scores(text)["compound"] > 0) for text in texts]


def accuracy(predicted: list[int], examples: list[Example]) -> float:
    hits = sum(p == e.label for p, e in zip(predicted, examples, strict=True))
    return round(hits / max(1, len(examples)), 4)


def evaluate(model_dir: Path, splits: Splits) -> Evaluation:
    """Held-out tweets, held-out templates and canaries, with VADER and majority baselines."""
    sets = {
        "held_out_tweets": splits.held_out_tweets,
        "held_out_templates": splits.held_out_templates,
    }
    texts = [e.text for examples in sets.values() for e in examples] + [c.text for c in CANARIES]
    predicted = classify(model_dir, texts)
    evaluation = Evaluation()
    start = 0
    for name, examples in sets.items():
        mine = predicted[start : start + len(examples)]
        evaluation.labels[name] = mine
        start += len(examples)
        positives = sum(e.label for e in examples) / max(1, len(examples))
        evaluation.metrics[name] = {
            "n": len(examples),
            "accuracy": accuracy(mine, examples),
            "vader_accuracy": accuracy(vader_labels([e.text for e in examples]), examples),
            "majority_accuracy": round(max(positives, 1 - positives), 4),
        }
    evaluation.labels["canaries"] = predicted[start:]
    for canary, label in zip(CANARIES, predicted[start:], strict=True):
        evaluation.canaries.append(
            {
                "text": canary.text,
                "expected": LABELS[canary.label],
                "predicted": LABELS[label],
                "ok": label == canary.label,
            }
        )
    passed = sum(result["ok"] for result in evaluation.canaries)
    evaluation.metrics["canaries"] = {"n": len(CANARIES), "passed": passed}
    return evaluation


def table(evaluation: Evaluation) -> str:
    """A plain-text accuracy table with the baselines, then any failing canary."""
    lines = [f"{'set':<20}{'n':>6}{'model':>9}{'VADER':>9}{'majority':>10}"]
    for name in ("held_out_tweets", "held_out_templates"):
        m = evaluation.metrics[name]
        lines.append(
            f"{name:<20}{m['n']:>6}{m['accuracy']:>9.3f}"
            f"{m['vader_accuracy']:>9.3f}{m['majority_accuracy']:>10.3f}"
        )
    c = evaluation.metrics["canaries"]
    lines.append(f"{'canaries':<20}{c['n']:>6}{c['passed']:>6}/{c['n']:<2}")
    lines += [
        f"  WRONG: {r['text']!r} -> {r['predicted']} (expected {r['expected']})"
        for r in evaluation.canaries
        if not r["ok"]
    ]
    return "\n".join(lines)
