"""Whether the local model answers correctly, and which model version is serving.

Loading without error proves little (a wrong or corrupted model loads fine), so readiness asks the
model two sentences whose labels nobody disputes.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

from app.classifier import Prediction

CANARIES: tuple[tuple[str, str], ...] = (
    ("I am so happy today!", "POSITIVE"),
    ("This is the worst day ever.", "NEGATIVE"),
)


async def canary_failures(
    classify: Callable[[Sequence[str]], Awaitable[list[Prediction]]],
) -> list[str]:
    """One message per canary sentence the model gets wrong (empty when all are right)."""
    predictions = await classify([text for text, _ in CANARIES])
    return [
        f"canary {text!r} was classified {prediction.label}, expected {expected}"
        for (text, expected), prediction in zip(CANARIES, predictions, strict=True)
        if prediction.label != expected
    ]


def model_version(model: str, pipe: Any) -> str | None:
    """The "version" of a local model's manifest.json, else the Hub commit it was loaded from."""
    manifest = Path(model) / "manifest.json"
    if manifest.is_file():
        try:
            version = json.loads(manifest.read_text()).get("version")
        except (ValueError, AttributeError, OSError):
            version = None
        if isinstance(version, str):
            return version
    commit = getattr(getattr(getattr(pipe, "model", None), "config", None), "_commit_hash", None)
    return commit if isinstance(commit, str) else None
