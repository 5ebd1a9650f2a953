"""Fleet deploy wall times on local testbed VMs: three hosts in one run against one host.

    flock /tmp/team/bench.lock .venv/bin/python bench/fleet.py [--runs 3] [--hosts 3]

Cold (pristine VMs -> every host gives the right label) and no-op re-runs, one host and then
all hosts in one ``deploy()`` call, alternating so that load drifts hit both alike. Prints
every run, the medians, and the ratio fleet/one against the goal (<= 1.5x: pyinfra runs each
operation across the hosts at once, so a fleet should cost little more than one host).
Between cold runs the VMs are wiped (pristine disk, new host keys), as re-imaged VMs look.
The control-side caches (wheelhouse, app wheel) are warmed first: a user pays them once.
``workers = 1`` per host, as in the fleet VM tests.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from contextlib import ExitStack
from dataclasses import replace
from pathlib import Path

import httpx

from mlopsdeploy.config import HostConfig
from mlopsdeploy.deployment.api import deploy
from mlopsdeploy.deployment.control.ssh_login import ensure_keypair
from mlopsdeploy.deployment.results import DeployOptions
from mlopsdeploy.testbed import TestVM
from mlopsdeploy.testbed.target import testbed_host

GOAL = 1.5
SENTENCE, LABEL = "I am so happy today!", "POSITIVE"


def timed_deploy(cfgs: list[HostConfig], options: DeployOptions) -> tuple[float, int]:
    """Seconds from the deploy call until every host gives the right label; steps changed."""
    start = time.monotonic()
    result = deploy(cfgs, options)
    if not result.ok:
        raise SystemExit(f"deploy failed: {[str(h.error) for h in result.hosts if h.error]}")
    for cfg in cfgs:
        answer = httpx.post(f"{cfg.url}/api/sentiment", json={"text": SENTENCE}, timeout=30)
        if answer.json()["label"] != LABEL:
            raise SystemExit(f"{cfg.name}: wrong label after deploy: {answer.text}")
    return time.monotonic() - start, sum(len(h.changed) for h in result.hosts)


def load() -> str:
    return "/".join(f"{value:.2f}" for value in os.getloadavg())


def report(kind: str, one: list[float], fleet: list[float], hosts: int) -> None:
    def line(label: str, walls: list[float]) -> str:
        runs = ", ".join(f"{w:.1f}" for w in walls)
        spread = f"range {min(walls):.1f}-{max(walls):.1f}"
        return f"  {label}: median {statistics.median(walls):.2f} s ({runs}; {spread})"

    ratio = statistics.median(fleet) / statistics.median(one)
    print(f"\n{kind}:")
    print(line("1 host ", one))
    print(line(f"{hosts} hosts", fleet))
    verdict = "meets" if ratio <= GOAL else "misses"
    print(f"  ratio {hosts}/1: {ratio:.2f}x (goal <= {GOAL}x: {verdict} it)", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--hosts", type=int, default=3)
    parser.add_argument("--model", type=Path, default=DeployOptions().model_dir)
    prefix = os.environ.get("MLOPSDEPLOY_VM_PREFIX", "bench")
    parser.add_argument("--vm-prefix", default=f"{prefix}-fleet-{os.getpid()}")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-fleet-") as tmp, ExitStack() as stack:
        root = Path(tmp)
        options = replace(DeployOptions(), model_dir=args.model, accept_new_host_key=True)
        key = ensure_keypair(root / "id")
        vms = [stack.enter_context(TestVM(f"{args.vm_prefix}-{i}")) for i in range(args.hosts)]
        cfgs = [
            replace(testbed_host(vm, key=key, known_hosts=root / "kh"), workers=1) for vm in vms
        ]
        start = time.monotonic()
        deploy(cfgs[:1], options)  # warms the control-side caches; not counted
        print(f"control-side caches + first deploy: {time.monotonic() - start:.1f} s")
        print(f"load average (1/5/15 min) at the start: {load()}", flush=True)
        cold_one, cold_all, noop_one, noop_all = [], [], [], []
        for _ in range(args.runs):
            vms[0].wipe()
            wall, _ = timed_deploy(cfgs[:1], options)
            cold_one.append(wall)
            for vm in vms:
                vm.wipe()
            wall, _ = timed_deploy(cfgs, options)
            cold_all.append(wall)
            print(
                f"cold: 1 host {cold_one[-1]:.1f} s, {args.hosts} hosts {wall:.1f} s, load {load()}"
            )
        for _ in range(args.runs):
            wall, changed = timed_deploy(cfgs[:1], options)
            noop_one.append(wall)
            wall_all, changed_all = timed_deploy(cfgs, options)
            noop_all.append(wall_all)
            print(
                f"no-op: 1 host {wall:.1f} s ({changed} changes), {args.hosts} hosts "
                f"{wall_all:.1f} s ({changed_all} changes), load {load()}"
            )
        report("cold deploy", cold_one, cold_all, args.hosts)
        report("no-op deploy", noop_one, noop_all, args.hosts)
        # Printed before the VMs are torn down: a failing teardown must not lose the figures.
        print(f"load average (1/5/15 min) at the end: {load()}", flush=True)


if __name__ == "__main__":
    main()
