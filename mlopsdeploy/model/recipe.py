"""The recipe: every setting that shapes the model, and the version id derived from it.

The version id is a hash of everything that determines the artifact — these settings, the
input data and library versions (sources.fingerprint) and the code of the modules that prepare
data and train — so a cache entry is never reused after any of them changed, while editing a
docstring or comment keeps the version (and the cached model).
"""

from __future__ import annotations

import ast
import hashlib
import json
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TypeVar

LABELS = ("NEGATIVE", "POSITIVE")
NAME = "minilm-sentiment"
T = TypeVar("T")
#: Modules whose code decides the artifact's content; their source is part of the version id.
RECIPE_MODULES = ("recipe", "tweets", "lexicon", "templates", "dataset", "canaries", "train")


@dataclass(frozen=True)
class Example:
    """A sentence and its label index into LABELS."""

    text: str
    label: int


@dataclass(frozen=True)
class Settings:
    """Knobs of one build. Defaults are the CI recipe: it passes the gate within budget."""

    seed: int = 13
    tweet_holdout: float = 0.10
    adjective_holdout: float = 0.20
    #: Training tweets whose annotator agreement is below this are skipped (held-out ones are not).
    min_confidence: float = 0.5
    train_tweets: int = 6000
    train_templates: int = 2000
    epochs: int = 1
    batch_size: int = 32
    max_length: int = 64
    learning_rate: float = 8e-5
    warmup_ratio: float = 0.1
    #: Keeping the pretrained word embeddings fixed keeps unseen (held-out) words meaningful.
    freeze_embeddings: bool = True


def _code_only(source: str) -> str:
    """The module's syntax tree without docstrings: comments, docs and layout are not recipe."""
    tree = ast.parse(source)
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            first = node.body[0] if node.body else None
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                node.body = node.body[1:] or [ast.Pass()]
    return ast.dump(tree)


def recipe_code_sha256() -> str:
    """sha256 over the code of RECIPE_MODULES, so changed behaviour is a new version."""
    digest = hashlib.sha256()
    for name in RECIPE_MODULES:
        digest.update(
            _code_only((Path(__file__).parent / f"{name}.py").read_text("utf-8")).encode()
        )
    return digest.hexdigest()


def version_id(settings: Settings, fingerprint: dict[str, object]) -> str:
    """`minilm-sentiment-<12 hex>` from settings, input fingerprint and recipe code."""
    inputs = {"settings": asdict(settings), "inputs": fingerprint, "code": recipe_code_sha256()}
    canonical = json.dumps(inputs, sort_keys=True).encode()
    return f"{NAME}-{hashlib.sha256(canonical).hexdigest()[:12]}"


def holdout_split(
    items: Iterable[T], key: Callable[[T], str], fraction: float, seed: int
) -> tuple[list[T], list[T]]:
    """(train, held_out) by a seeded hash of each item's key, not by a shuffle.

    Hashing makes the split independent of file order and of how many other items there
    are, and puts duplicates of one text on the same side.
    """
    train: list[T] = []
    held_out: list[T] = []
    for item in items:
        digest = hashlib.sha256(f"{seed}:{key(item)}".encode()).digest()
        held = int.from_bytes(digest[:8], "big") < fraction * 2**64
        (held_out if held else train).append(item)
    return train, held_out
