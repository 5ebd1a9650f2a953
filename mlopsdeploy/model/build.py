"""`build`: from packaged inputs to a gated, manifested, cached model directory.

Steps: fingerprint the inputs into a version id; reuse the cache entry of that version if it
is intact; otherwise train, save, evaluate the saved artifact, apply the gate, write the
manifest, and only then move the result into the cache. `--out` gets an atomic copy.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from mlopsdeploy.model import sources
from mlopsdeploy.model.evaluate import Evaluation
from mlopsdeploy.model.manifest import write_manifest
from mlopsdeploy.model.recipe import Settings, version_id
from mlopsdeploy.model.store import atomic_dir, cached, copy_artifact

MIN_TWEET_ACCURACY = 0.88


class GateFailed(RuntimeError):
    """The trained model is not good enough to ship; nothing was cached or published."""


@dataclass(frozen=True)
class Plan:
    """What a build would produce: settings, input fingerprint and the version id they give."""

    settings: Settings
    inputs: dict[str, Any]
    version: str


@dataclass(frozen=True)
class Trained:
    """What producing a model reports back for the manifest."""

    evaluation: Evaluation
    data: dict[str, Any]
    train_seconds: float


@dataclass(frozen=True)
class Result:
    path: Path
    version: str
    cache_hit: bool
    seconds: float


Producer = Callable[[Plan, Path, Callable[[str], None]], Trained]


def plan(settings: Settings) -> Plan:
    inputs = sources.fingerprint()
    return Plan(settings, inputs, version_id(settings, inputs))


def gate(evaluation: Evaluation) -> list[str]:
    """Reasons not to ship: held-out tweet accuracy below the bar or any wrong canary."""
    failures = []
    tweet_accuracy = evaluation.metrics["held_out_tweets"]["accuracy"]
    if tweet_accuracy < MIN_TWEET_ACCURACY:
        failures.append(
            f"held-out tweet accuracy {tweet_accuracy:.4f} < {MIN_TWEET_ACCURACY} required"
        )
    failures += [
        f"canary {r['text']!r} -> {r['predicted']} (expected {r['expected']})"
        for r in evaluation.canaries
        if not r["ok"]
    ]
    return failures


def train_and_evaluate(plan: Plan, dest: Path, log: Callable[[str], None]) -> Trained:
    """The real producer: prepare data, fine-tune, save into `dest`, evaluate the saved files."""
    import torch

    from mlopsdeploy.model import artifact, dataset, train
    from mlopsdeploy.model.evaluate import evaluate

    splits = dataset.make_splits(
        plan.settings, sources.TWEETS.path(), sources.ADJECTIVES.path(), sources.VADER.path()
    )
    log(
        f"training on {len(splits.train)} examples ({len(splits.train_tweets)} tweets, "
        f"{len(splits.train_templates)} templates); held out {len(splits.held_out_tweets)} tweets, "
        f"{len(splits.held_out_adjectives)} adjectives"
    )
    started, cpu_started = time.monotonic(), time.process_time()
    model, tokenizer = train.load(sources.ENCODER.path(), plan.settings.seed)
    train.fine_tune(model, tokenizer, splits.train, plan.settings, log)
    seconds = round(time.monotonic() - started, 1)
    cpu_seconds = round(time.process_time() - cpu_started, 1)
    artifact.save(model, tokenizer, dest)
    log(f"trained in {seconds}s ({cpu_seconds} CPU s); evaluating the saved model")
    data = {
        "train_examples": len(splits.train),
        "train_tweets": len(splits.train_tweets),
        "train_templates": len(splits.train_templates),
        "held_out_adjectives": splits.held_out_adjectives,
        "threads": torch.get_num_threads(),
        "train_cpu_seconds": cpu_seconds,
    }
    return Trained(evaluate(dest, splits), data, seconds)


def build(
    out: Path | None,
    plan: Plan,
    cache_dir: Path,
    produce: Producer = train_and_evaluate,
    log: Callable[[str], None] = print,
) -> Result:
    """Produce (or reuse from `cache_dir`) the model for `plan`; copy it to `out` if given.

    Raises GateFailed when the model misses the gate; then neither the cache nor `out` changes.
    """
    started = time.monotonic()
    entry = cached(cache_dir, plan.version)
    hit = entry is not None
    if entry is None:
        entry = cache_dir / plan.version
        with atomic_dir(entry) as tmp:
            trained = produce(plan, tmp, log)
            if failures := gate(trained.evaluation):
                raise GateFailed("model failed the gate:\n  " + "\n  ".join(failures))
            write_manifest(
                tmp,
                plan.version,
                kind="built",
                metrics=trained.evaluation.metrics,
                canaries=trained.evaluation.canaries,
                sources=plan.inputs,
                settings=asdict(plan.settings),
                data=trained.data,
                train_seconds=trained.train_seconds,
                build_seconds=round(time.monotonic() - started, 1),
            )
    if out is not None:
        copy_artifact(entry, out)
    return Result(out or entry, plan.version, hit, round(time.monotonic() - started, 2))
