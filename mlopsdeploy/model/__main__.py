"""python -m mlopsdeploy.model build|evaluate|verify|fetch — see docs/model.md."""

from __future__ import annotations

import argparse
import dataclasses
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mlopsdeploy.model.manifest import read_manifest, verify
from mlopsdeploy.model.recipe import Settings
from mlopsdeploy.model.sources import MissingSource
from mlopsdeploy.model.store import default_cache_dir


def _threads(requested: int | None) -> None:
    """Use every core this process may run on unless told otherwise (CI has 2)."""
    import torch

    torch.set_num_threads(requested or len(os.sched_getaffinity(0)))


def _build(args: argparse.Namespace) -> int:
    from mlopsdeploy.model.build import GateFailed, Plan, Trained, build, plan, train_and_evaluate

    def produce(the_plan: Plan, dest: Path, log: Callable[[str], None]) -> Trained:
        _threads(args.threads)  # here, so that a cache hit never imports torch
        return train_and_evaluate(the_plan, dest, log)

    overrides = {"train_tweets": args.train_tweets, "train_templates": args.train_templates}
    settings = dataclasses.replace(
        Settings(), **{k: v for k, v in overrides.items() if v is not None}
    )
    the_plan = plan(settings)
    cache_dir = args.cache_dir or default_cache_dir()
    print(f"model version {the_plan.version} (cache {cache_dir})", flush=True)
    try:
        result = build(
            args.out, the_plan, cache_dir, produce, log=lambda line: print(line, flush=True)
        )
    except GateFailed as failure:
        print(f"build failed: {failure}", file=sys.stderr)
        return 1
    source = "cache hit" if result.cache_hit else "built"
    print(f"{source}: {result.version} at {result.path} in {result.seconds:.1f}s")
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from mlopsdeploy.model import agreement, dataset, sources
    from mlopsdeploy.model.canaries import CANARIES
    from mlopsdeploy.model.evaluate import evaluate, table

    known = {field.name for field in dataclasses.fields(Settings)}
    try:
        recorded = read_manifest(args.dir).get("settings") or {}
    except (OSError, ValueError):
        recorded = {}
    settings = Settings(**{k: v for k, v in recorded.items() if k in known})
    _threads(args.threads)
    splits = dataset.make_splits(
        settings, sources.TWEETS.path(), sources.ADJECTIVES.path(), sources.VADER.path()
    )
    evaluation = evaluate(args.dir, splits)
    print(table(evaluation))
    variants = agreement.measure(
        args.dir,
        [example.text for example in splits.held_out_tweets],
        [canary.text for canary in CANARIES],
        evaluation.labels["held_out_tweets"],
        evaluation.labels["canaries"],
    )
    if variants:
        print(agreement.table(variants))
    return 0


def _verify(args: argparse.Namespace) -> int:
    problems = verify(args.dir, runtime=args.runtime)
    for problem in problems:
        print(f"{args.dir}: {problem}", file=sys.stderr)
    if not problems:
        print(f"{args.dir}: intact ({read_manifest(args.dir)['version']})")
    return 1 if problems else 0


def _fetch(args: argparse.Namespace) -> int:
    from mlopsdeploy.model.build import GateFailed, export_gate, export_with_agreement
    from mlopsdeploy.model.fetch import add_tokenizer_json, fetch

    def export(dest: Path) -> dict[str, Any]:
        _threads(args.threads)
        add_tokenizer_json(dest)
        exported = export_with_agreement(Settings(), dest, lambda line: print(line, flush=True))
        if failures := export_gate(exported):
            raise GateFailed("ONNX export failed the gate:\n  " + "\n  ".join(failures))
        return exported.onnx

    try:
        manifest = fetch(
            args.model_id, args.out, revision=args.revision, export=None if args.no_onnx else export
        )
    except GateFailed as failure:
        print(f"fetch failed: {failure}", file=sys.stderr)
        return 1
    print(f"fetched {manifest['version']} to {args.out}")
    return 0


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="python -m mlopsdeploy.model", description=__doc__)
    commands = root.add_subparsers(dest="command", required=True)

    build = commands.add_parser("build", help="build (or reuse from cache) the offline model")
    build.add_argument("--out", type=Path, help="publish a copy of the model here")
    build.add_argument("--cache-dir", type=Path, help="default: $MLOPSDEPLOY_CACHE or ~/.cache")
    build.add_argument("--threads", type=int, help="torch threads (default: usable cores)")
    build.add_argument("--train-tweets", type=int, help="tweets to train on (changes version)")
    build.add_argument("--train-templates", type=int, help="templates to train on (ditto)")
    build.set_defaults(run=_build)

    evaluate = commands.add_parser(
        "evaluate", help="print the accuracy table of a model dir and its ONNX agreement"
    )
    evaluate.add_argument("dir", type=Path)
    evaluate.add_argument("--threads", type=int)
    evaluate.set_defaults(run=_evaluate)

    check = commands.add_parser("verify", help="check a model dir against its manifest")
    check.add_argument("dir", type=Path)
    check.add_argument("--runtime", help="only the files this runtime needs must be present")
    check.set_defaults(run=_verify)

    fetch = commands.add_parser("fetch", help="download a Hub model into the artifact layout")
    fetch.add_argument("model_id")
    fetch.add_argument("--out", type=Path, required=True)
    fetch.add_argument("--revision")
    fetch.add_argument("--threads", type=int, help="torch threads for the ONNX agreement check")
    fetch.add_argument(
        "--no-onnx", action="store_true", help="skip the ONNX export (hosts then need torch)"
    )
    fetch.set_defaults(run=_fetch)
    return root


def _exit_on_sigterm(signum: int, frame: object) -> None:
    """Turn SIGTERM into SystemExit so temp dirs of an interrupted build are removed."""
    sys.exit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return int(args.run(args))
    except MissingSource as missing:
        print(f"error: {missing}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    sys.exit(main())
