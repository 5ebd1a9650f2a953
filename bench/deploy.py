"""Deploy wall times on a local testbed VM: cold (pristine VM -> correct label), no-op re-runs,
home wipe -> correct label; and what the host carries: venv and wheelhouse size, app start
to /readyz 200 on the VM, resident memory per app process.

    flock /tmp/team/bench.lock .venv/bin/python bench/deploy.py [--runs 3] [--model build/model]
        [--app app] [--online]

Prints every run, the medians, the median seconds of each step and phase, and the ratio to the
goals (cold <= 30 s, no-op <= 2 s, home wipe <= 30 s, VM wipe <= 35 s, venv <= 500 MB,
wheelhouse <= 150 MB, start <= 3 s, RSS <= 300 MB). Between cold runs the VM is wiped
(pristine disk, new host keys), exactly what a re-imaged course VM looks like; "vm wipe" is
that wipe plus the cold deploy after it, up to the right label. The no-op runs start once every
worker of the last cold deploy sent READY=1 (a cold deploy returns when they accept, and their
UI build after that takes both cores for seconds); one no-op before that is printed apart.
The control-side caches (wheelhouse, app wheel) are warmed first and their build time is
printed separately: a user pays it once.
With ``--online`` the host installs from a package index instead (``install = "online"``):
pypiserver on the VM's link serves the same wheels, so the figures compare the two install
paths, not the speed of PyPI.
"""

from __future__ import annotations

import argparse
import os
import shlex
import statistics
import tempfile
import time
from collections import defaultdict
from contextlib import ExitStack
from dataclasses import replace
from functools import partial
from pathlib import Path

import httpx

from mlopsdeploy.config import HostConfig
from mlopsdeploy.deployment.api import deploy
from mlopsdeploy.deployment.control.bundle import build_release
from mlopsdeploy.deployment.control.ssh_login import ensure_keypair
from mlopsdeploy.deployment.control.wheelhouse import build_wheelhouse, pinned_requirements
from mlopsdeploy.deployment.facts.runtime import PythonTarget
from mlopsdeploy.deployment.host_commands import USER_RUNTIME_DIR
from mlopsdeploy.deployment.results import DeployOptions, HostResult
from mlopsdeploy.testbed import TestVM
from mlopsdeploy.testbed.target import testbed_host
from mlopsdeploy.testing.package_index import PackageIndex

GOALS = {"cold": 30.0, "no-op": 2.0, "home wipe": 30.0, "vm wipe": 35.0}
SENTENCE, LABEL = "I am so happy today!", "POSITIVE"


def warm_caches(options: DeployOptions) -> tuple[float, Path]:
    """Seconds to build the release and the wheelhouse the VM gets, and the wheelhouse dir."""
    start = time.monotonic()
    bundle = build_release(options.app_dir, options.model_dir, options.cache_dir)
    target = PythonTarget("3.11", "x86_64", "2.36")  # the testbed image's python3
    lock = pinned_requirements(target, requires=bundle.requirements)
    wheels = build_wheelhouse(options.cache_dir, lock, target)
    return time.monotonic() - start, wheels


def megabytes(root: Path) -> float:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file()) / 2**20


# Run on the VM: the deployed app started by hand on a spare port, timed to its first /readyz 200.
START_TO_READY = """cd {base}/current && PYTHONPATH=app {base}/venv/bin/python - <<'EOF'
import subprocess, sys, time, urllib.request
start = time.monotonic()
argv = [sys.executable, "-m", "app", "--model", "model", "--port", "18999"]
app = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
while True:
    try:
        urllib.request.urlopen("http://127.0.0.1:18999/readyz")
        break
    except OSError:  # refused while starting, HTTP 503 while loading
        time.sleep(0.02)
print(round(time.monotonic() - start, 3))
app.terminate()
app.wait()
EOF"""


def host_figures(vm: TestVM, cfg: HostConfig, starts: int) -> None:
    """Venv size, start -> /readyz 200 (median of `starts`) and RSS of the app's processes."""
    run = partial(vm.run, key=cfg.own_key)
    venv = run(f"du -sm {cfg.base_dir}/venv/").stdout.split()[0]  # the link to venvs/<lock digest>
    print(f"\nVM venv: {venv} MB (goal 500 MB)")
    seconds = [
        float(run(START_TO_READY.format(base=cfg.base_dir), timeout=180).stdout.split()[-1])
        for _ in range(starts)
    ]
    runs = ", ".join(f"{s:.2f}" for s in seconds)
    print(f"start -> /readyz 200 on the VM: median {statistics.median(seconds):.2f} s ({runs})")
    rss = run("ps -eo rss=,args= | grep '[-]m app' | awk '{print $1}'").stdout.split()
    print(f"RSS per app process: {', '.join(f'{int(kb) / 1024:.0f} MB' for kb in rss)} (goal 300)")


# Run on the VM: until every worker is ``active`` (READY=1, sent once its UI is built too).
# A cold start returns when the workers accept (their JSON API serves) and they build their UI
# after that, for seconds of both cores: a no-op measured meanwhile measures that contention.
SETTLED = (
    "export " + USER_RUNTIME_DIR + "; "
    "until systemctl --user list-units --plain --no-legend 'mlopsdeploy@*.service' "
    "| awk '$3 != \"active\" {bad = 1} END {exit bad}'; do sleep 0.1; done"
)


def settled(vm: TestVM, cfg: HostConfig) -> float:
    """Seconds until every worker on the VM has sent READY=1 (one SSH login included)."""
    start = time.monotonic()
    vm.run(f"timeout 300 sh -c {shlex.quote(SETTLED)}", key=cfg.own_key, timeout=310)
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
    # A copy of the app keeps the no-op runs no-ops while someone edits the working tree's app.
    parser.add_argument("--app", type=Path, default=DeployOptions().app_dir)
    prefix = os.environ.get("MLOPSDEPLOY_VM_PREFIX", "bench")
    parser.add_argument("--vm-name", default=f"{prefix}-deploy-{os.getpid()}")
    parser.add_argument("--online", action="store_true", help="install from a package index")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-deploy-") as tmp:
        root = Path(tmp)
        options = replace(
            DeployOptions(), app_dir=args.app, model_dir=args.model, accept_new_host_key=True
        )
        seconds, wheels = warm_caches(options)
        print(f"control-side caches (wheelhouse, app wheel): {seconds:.1f} s")
        print(f"wheelhouse: {megabytes(wheels):.0f} MB (goal 150 MB)")
        print(f"load average at the start {os.getloadavg()[0]:.2f}")
        with TestVM(args.vm_name) as vm, ExitStack() as stack:
            vm.up()
            cfg = testbed_host(vm, key=ensure_keypair(root / "id"), known_hosts=root / "kh")
            if args.online:
                index = PackageIndex(wheels, vm.host_address, root / "index.log")
                stack.enter_context(index)
                cfg = replace(cfg, install="online", index_url=index.url)
            print(f"install: {cfg.install}")
            cold: list[float] = []
            cold_results: list[HostResult] = []
            wiped: list[float] = []
            for run in range(args.runs):
                started = time.monotonic()
                if run:
                    vm.wipe()
                wall, result = timed_deploy(cfg, options)
                cold.append(wall)
                cold_results.append(result)
                if run:
                    wiped.append(time.monotonic() - started)
            report("cold", cold, cold_results)
            if wiped:
                report("vm wipe", wiped, cold_results[1:])
            early, _ = timed_deploy(cfg, options)
            wait = settled(vm, cfg)
            print(
                f"\nno-op right after the last cold deploy, while its workers build their UI: "
                f"{early:.2f} s; every worker sent READY=1 {wait:.1f} s later"
            )
            noop: list[float] = []
            noop_results: list[HostResult] = []
            for _ in range(args.runs):
                wall, result = timed_deploy(cfg, options)
                noop.append(wall)
                noop_results.append(result)
            report("no-op", noop, noop_results)
            home: list[float] = []
            home_results: list[HostResult] = []
            for _ in range(args.runs):
                vm.wipe_home()
                wall, result = timed_deploy(cfg, options)
                home.append(wall)
                home_results.append(result)
            report("home wipe", home, home_results)
            host_figures(vm, cfg, args.runs)
            # Printed before the VM is torn down: a failing teardown must not lose the figures.
            print(f"load average at the end {os.getloadavg()[0]:.2f}", flush=True)


if __name__ == "__main__":
    main()
