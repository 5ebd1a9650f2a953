"""`build`: from packaged inputs to a gated, manifested, cached model directory.

Steps: fingerprint the inputs into the trained model's id and, with the export toolchain, the
version id; reuse the cache entry of that version if it is intact. Otherwise reuse the cached
trained model of the same inputs, or train, save, evaluate the saved artifact, apply the gate
and cache it; then export it to ONNX, keep the int8 variant only if it agrees with torch, gate
the agreement, write the manifest, and only then move the result into the cache. Training
takes minutes and the export seconds, so a change to the export never re-trains.
`--out` gets an atomic copy.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from mlopsdeploy.model import export, sources
from mlopsdeploy.model.evaluate import Evaluation
from mlopsdeploy.model.manifest import MANIFEST_NAME, read_manifest, write_manifest
from mlopsdeploy.model.recipe import Settings, version_id
from mlopsdeploy.model.store import atomic_dir, cached, copy_artifact

MIN_TWEET_ACCURACY = 0.88


class GateFailed(RuntimeError):
    """The trained model is not good enough to ship; nothing was cached or published."""


@dataclass(frozen=True)
class Plan:
    """What a build would produce: settings, input fingerprint, the trained model's id (the
    cache key of the training) and the version id of the shipped artifact."""

    settings: Settings
    inputs: dict[str, Any]
    trained: str
    version: str


@dataclass(frozen=True)
class Trained:
    """What producing a model reports back for the manifest."""

    evaluation: Evaluation
    data: dict[str, Any]
    train_seconds: float


@dataclass(frozen=True)
class Exported:
    """What exporting reports back: the manifest's "onnx" section.

    + onnx: opset, the file the ONNX runtime serves, and each variant's agreement with torch
    """

    onnx: dict[str, Any]
    seconds: float


@dataclass(frozen=True)
class Result:
    path: Path
    version: str
    cache_hit: bool
    seconds: float


Producer = Callable[[Plan, Path, Callable[[str], None]], Trained]
Exporter = Callable[[Plan, Path, Callable[[str], None]], Exported]


def plan(settings: Settings) -> Plan:
    inputs = sources.fingerprint()
    trained = version_id(settings, inputs)
    return Plan(settings, inputs, trained, export.version_id(trained))


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


def export_gate(exported: Exported) -> list[str]:
    """Reasons not to ship: the served ONNX file disagrees with torch beyond the tolerance."""
    from mlopsdeploy.model.agreement import MIN_AGREEMENT, within_tolerance

    failures = []
    for name, figures in exported.onnx["variants"].items():
        if figures["file"] == exported.onnx["serves"] and not within_tolerance(figures):
            tweets, canaries = figures["held_out_tweets"], figures["canaries"]
            failures.append(
                f"ONNX {name} agrees with torch on {tweets['agreement']:.2%} of held-out tweets "
                f"(>= {MIN_AGREEMENT:.1%} required) and {canaries['agree']}/{canaries['n']} "
                "canaries"
            )
    return failures


def export_and_compare(plan: Plan, dest: Path, log: Callable[[str], None]) -> Exported:
    """The real exporter: ONNX fp32 and int8 from the saved model in `dest`, scored against
    torch on the held-out tweets and canaries; int8 is deleted unless within tolerance."""
    return export_with_agreement(plan.settings, dest, log)


def export_with_agreement(settings: Settings, dest: Path, log: Callable[[str], None]) -> Exported:
    """Export any NEGATIVE/POSITIVE classifier dir (built or fetched) and measure agreement on
    the held-out tweets `settings` select."""
    from mlopsdeploy.model import agreement, dataset
    from mlopsdeploy.model.canaries import CANARIES
    from mlopsdeploy.model.evaluate import classify

    started = time.monotonic()
    export.export_fp32(dest)
    export.quantize_int8(dest)
    splits = dataset.make_splits(
        settings, sources.TWEETS.path(), sources.ADJECTIVES.path(), sources.VADER.path()
    )
    tweets = [example.text for example in splits.held_out_tweets]
    canaries = [canary.text for canary in CANARIES]
    log(f"exported to ONNX; comparing with torch on {len(tweets)} held-out tweets + canaries")
    torch_labels = classify(dest, tweets + canaries)
    variants = agreement.measure(
        dest, tweets, canaries, torch_labels[: len(tweets)], torch_labels[len(tweets) :]
    )
    log("\n" + agreement.table(variants))
    if within_tolerance := agreement.within_tolerance(variants["int8"]):
        serves = export.INT8_FILE
    else:
        (dest / export.INT8_FILE).unlink()
        serves = export.FP32_FILE
        log("int8 disagrees with torch beyond the tolerance: not shipped")
    variants["int8"]["shipped"] = within_tolerance
    onnx = {"opset": export.OPSET, "serves": serves, "variants": variants}
    return Exported(onnx, round(time.monotonic() - started, 1))


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


def _trained_entry(
    plan: Plan, cache_dir: Path, produce: Producer, log: Callable[[str], None]
) -> Path:
    """The cached trained model of `plan`, trained (and gated) now if it is not cached."""
    if (entry := cached(cache_dir, plan.trained)) is not None:
        log(f"reusing trained model {plan.trained} from the cache")
        return entry
    started = time.monotonic()
    entry = cache_dir / plan.trained
    with atomic_dir(entry) as tmp:
        trained = produce(plan, tmp, log)
        if failures := gate(trained.evaluation):
            raise GateFailed("model failed the gate:\n  " + "\n  ".join(failures))
        write_manifest(
            tmp,
            plan.trained,
            kind="built",
            metrics=trained.evaluation.metrics,
            canaries=trained.evaluation.canaries,
            sources=plan.inputs,
            settings=asdict(plan.settings),
            data=trained.data,
            train_seconds=trained.train_seconds,
            build_seconds=round(time.monotonic() - started, 1),
        )
    return entry


def build(
    out: Path | None,
    plan: Plan,
    cache_dir: Path,
    produce: Producer = train_and_evaluate,
    log: Callable[[str], None] = print,
    exporter: Exporter = export_and_compare,
) -> Result:
    """Produce (or reuse from `cache_dir`) the model for `plan`; copy it to `out` if given.

    Raises GateFailed when the model or its ONNX export misses the gate; then neither the
    shipped cache entry nor `out` changes.
    """
    started = time.monotonic()
    entry = cached(cache_dir, plan.version)
    hit = entry is not None
    if entry is None:
        trained = _trained_entry(plan, cache_dir, produce, log)
        record = {
            key: value
            for key, value in read_manifest(trained).items()
            if key not in ("format", "version", "files")
        }
        entry = cache_dir / plan.version
        with atomic_dir(entry) as tmp:
            shutil.copytree(
                trained, tmp, dirs_exist_ok=True, ignore=shutil.ignore_patterns(MANIFEST_NAME)
            )
            exported = exporter(plan, tmp, log)
            if failures := export_gate(exported):
                raise GateFailed("ONNX export failed the gate:\n  " + "\n  ".join(failures))
            write_manifest(
                tmp,
                plan.version,
                **record,
                trained_version=plan.trained,
                onnx=exported.onnx,
                runtimes=export.runtime_files(tmp, exported.onnx["serves"]),
                export_seconds=exported.seconds,
            )
    if out is not None:
        copy_artifact(entry, out)
    return Result(out or entry, plan.version, hit, round(time.monotonic() - started, 2))
