"""Deploy wall times on a local testbed VM: cold (pristine VM -> correct label) and no-op re-runs.

    .venv/bin/python bench/deploy.py [--runs 3] [--model build/model]

Prints every run, the medians, the median seconds of each step and phase, and the ratio to the
goals (cold <= 30 s, no-op <= 3 s). Between cold runs the VM is wiped (pristine disk, new host
keys), exactly what a re-imaged course VM looks like. The control-side caches (wheelhouse, app
wheel) are warmed first and their build time is printed separately: a user pays it once.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections import defaultdict
from dataclasses import replace
from pathlib import Path

import httpx

from mlopsdeploy.config import HostConfig
from mlopsdeploy.deployment.api import deploy
from mlopsdeploy.deployment.control.bundle import build_release
from mlopsdeploy.deployment.control.ssh_login import ensure_keypair
from mlopsdeploy.deployment.control.wheelhouse import build_wheelhouse, pinned_requirements
from mlopsdeploy.deployment.facts.runtime import PythonTarget
from mlopsdeploy.deployment.results import DeployOptions, HostResult
from mlopsdeploy.testbed import TestVM
from mlopsdeploy.testbed.target import testbed_host

GOALS = {"cold": 30.0, "no-op": 3.0}
SENTENCE, LABEL = "I am so happy today!", "POSITIVE"


def warm_caches(options: DeployOptions) -> float:
    start = time.monotonic()
    build_release(options.app_dir, options.model_dir, options.cache_dir)
    target = PythonTarget("3.11", "x86_64", "2.36")  # the testbed image's python3
    build_wheelhouse(options.cache_dir, pinned_requirements(target), target)
    return time.monotonic() - start


def timed_deploy(cfg: HostConfig, options: DeployOptions) -> tuple[float, HostResult]:
    """Seconds from the deploy call until the app port gives the right label."""
    start = time.monotonic()
    result = deploy([cfg], options).hosts[0]
    if not result.ok:
        raise SystemExit(f"deploy failed: {result.error}")
    answer = httpx.post(f"{cfg.url}/api/sentiment", json={"text": SENTENCE}, timeout=30).json()
    if answer["label"] != LABEL:
        raise SystemExit(f"wrong label after deploy: {answer}")
    return time.monotonic() - start, result


def breakdown(results: list[HostResult]) -> dict[str, float]:
    seconds: dict[str, list[float]] = defaultdict(list)
    for result in results:
        for step in result.steps:
            seconds[step.name.removeprefix("mlopsdeploy | ")].append(step.seconds)
        for phase, value in result.timings.items():
            seconds[f"[phase] {phase}"].append(value)
    return {name: statistics.median(values) for name, values in seconds.items()}


def report(kind: str, walls: list[float], results: list[HostResult]) -> None:
    median = statistics.median(walls)
    runs = ", ".join(f"{w:.1f}" for w in walls)
    print(
        f"\n{kind}: median {median:.2f} s over {len(walls)} runs ({runs}); "
        f"goal {GOALS[kind]:.0f} s -> {median / GOALS[kind]:.2f}x of goal"
    )
    changed = sorted({name for r in results for name in r.changed})
    print(f"  steps that changed something: {', '.join(changed) if changed else 'none'}")
    for name, seconds in sorted(breakdown(results).items(), key=lambda kv: -kv[1]):
        if seconds >= 0.01:
            print(f"  {seconds:7.2f} s  {name}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--model", type=Path, default=DeployOptions().model_dir)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-deploy-") as tmp:
        root = Path(tmp)
        options = replace(DeployOptions(), model_dir=args.model, accept_new_host_key=True)
        print(f"control-side caches (wheelhouse, app wheel): {warm_caches(options):.1f} s")
        with TestVM(f"bench-{os.getpid()}") as vm:
            vm.up()
            cfg = testbed_host(vm, key=ensure_keypair(root / "id"), known_hosts=root / "kh")
            cold: list[float] = []
            cold_results: list[HostResult] = []
            for run in range(args.runs):
                if run:
                    vm.wipe()
                wall, result = timed_deploy(cfg, options)
                cold.append(wall)
                cold_results.append(result)
            noop: list[float] = []
            noop_results: list[HostResult] = []
            for _ in range(args.runs):
                wall, result = timed_deploy(cfg, options)
                noop.append(wall)
                noop_results.append(result)
    report("cold", cold, cold_results)
    report("no-op", noop, noop_results)


if __name__ == "__main__":
    main()
