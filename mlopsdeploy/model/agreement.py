"""Do the ONNX files answer like torch? Labels on held-out tweets and canaries, per variant.

ONNX is scored through the app's own ONNX classifier (`app.onnx_classifier`), the code that
serves it, against labels from `transformers.pipeline`, the torch runtime. A variant ships only
if it agrees on at least MIN_AGREEMENT of the held-out tweets and on every canary; for the int8
file that decides whether it exists at all.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mlopsdeploy.model.export import FP32_FILE, INT8_FILE
from mlopsdeploy.model.recipe import LABELS

MIN_AGREEMENT = 0.995
BATCH = 64
VARIANTS = {"fp32": FP32_FILE, "int8": INT8_FILE}


def onnx_labels(model_dir: Path, onnx_name: str, texts: list[str]) -> list[int]:
    """Label indices from the ONNX file `onnx_name` alone, shortest texts batched together."""
    from app.onnx_classifier import OnnxClassifier

    classifier = OnnxClassifier(model_dir, threads=1, file=onnx_name)
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    labels = [0] * len(texts)
    for start in range(0, len(order), BATCH):
        chunk = order[start : start + BATCH]
        for i, prediction in zip(chunk, classifier([texts[i] for i in chunk]), strict=True):
            labels[i] = LABELS.index(prediction.label)
    return labels


def measure(
    model_dir: Path,
    tweets: list[str],
    canaries: list[str],
    torch_tweets: list[int],
    torch_canaries: list[int],
) -> dict[str, dict[str, Any]]:
    """Agreement with the given torch labels for each ONNX variant present in `model_dir`."""
    figures = {}
    for name, file in VARIANTS.items():
        if (model_dir / file).is_file():
            labels = onnx_labels(model_dir, file, tweets + canaries)
            figures[name] = {
                "file": file,
                **compare(
                    torch_tweets, labels[: len(tweets)], torch_canaries, labels[len(tweets) :]
                ),
            }
    return figures


def compare(
    torch_tweets: list[int],
    onnx_tweets: list[int],
    torch_canaries: list[int],
    onnx_canaries: list[int],
) -> dict[str, Any]:
    """Agreement figures for the manifest: share of equal tweet labels, canaries that differ."""
    same = sum(a == b for a, b in zip(torch_tweets, onnx_tweets, strict=True))
    return {
        "held_out_tweets": {
            "n": len(torch_tweets),
            "agree": same,
            "agreement": round(same / max(1, len(torch_tweets)), 4),
        },
        "canaries": {
            "n": len(torch_canaries),
            "agree": sum(a == b for a, b in zip(torch_canaries, onnx_canaries, strict=True)),
        },
    }


def within_tolerance(figures: dict[str, Any]) -> bool:
    canaries = figures["canaries"]
    return bool(
        figures["held_out_tweets"]["agreement"] >= MIN_AGREEMENT
        and canaries["agree"] == canaries["n"]
    )


def table(variants: dict[str, dict[str, Any]]) -> str:
    """Plain-text agreement of each ONNX variant with torch."""
    lines = [f"{'onnx vs torch':<20}{'tweets':>8}{'agree':>9}{'canaries':>10}"]
    for name, figures in variants.items():
        tweets, canaries = figures["held_out_tweets"], figures["canaries"]
        lines.append(
            f"{name:<20}{tweets['n']:>8}{tweets['agreement']:>9.2%}"
            f"{canaries['agree']:>7}/{canaries['n']:<2}"
        )
    return "\n".join(lines)
