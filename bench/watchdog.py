"""Benchmark the watchdog: detection latency and recovery time per fault, and the number of
repairs under a persistent fault.

    .venv/bin/python bench/watchdog.py [--runs 3] [--wipe-runs 3] [--faults sigkill,...]
                                       [--persistent-minutes 10]

Boots a test VM, deploys the app, and runs the real watchdog (`python -m mlopsdeploy.watchdog`,
default settings: probe every 2 s) in the background. Each fault is injected `--runs` times;
times are measured from the start of the injection to the journal's `detected_at` and
`recovered_at` (the first probe with correct labels). For the persistent fault, the host's model
weights are damaged while the watchdog's own model source is missing, so every redeploy fails
within a second or two: the worst case for a repair storm. It runs in real time, not compressed.
Needs root and the offline model (build/model), like the VM tests.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

from mlopsdeploy.deployment.api import deploy
from mlopsdeploy.deployment.control.ssh_login import ensure_keypair
from mlopsdeploy.deployment.results import DeployOptions
from mlopsdeploy.faults import Fault, Target, by_name
from mlopsdeploy.resilience.subjects import deployed_target
from mlopsdeploy.testbed import TestVM
from mlopsdeploy.testbed.target import testbed_host
from mlopsdeploy.watchdog.background import BackgroundWatchdog, write_hosts_file
from mlopsdeploy.watchdog.journal import Incident

FAULTS = ("sigkill", "service-stop", "sigstop", "network-cut", "home-wipe", "vm-wipe")
NETWORK_CUT_S = 10.0
TIMEOUT_S = 600.0


def measure(watchdog: BackgroundWatchdog, fault: Fault, target: Target) -> tuple[Incident, float]:
    injected = time.time()
    fault.inject(target)
    if fault.name == "network-cut":
        try:
            watchdog.wait_incident(injected, lambda i: True, TIMEOUT_S)
            time.sleep(NETWORK_CUT_S)  # the partition's length, part of the experiment
        finally:
            fault.undo(target)
    incident = watchdog.wait_incident(injected, lambda i: i.state == "recovered", TIMEOUT_S)
    return incident, injected


def recoverable(args: argparse.Namespace, work: Path, env: dict[str, str], target: Target) -> None:
    rows: list[tuple[str, list[float], list[float], str]] = []
    with BackgroundWatchdog(work / "state", ["--verbose"], env) as watchdog:
        watchdog.wait_log(" healthy: ", 120)
        for name in args.faults.split(","):
            fault = by_name(name)
            detect: list[float] = []
            recover: list[float] = []
            paths: set[str] = set()
            runs = args.wipe_runs if name.endswith("wipe") else args.runs
            for _ in range(runs):
                incident, injected = measure(watchdog, fault, target)
                detect.append(incident.detected_at - injected)
                assert incident.recovered_at is not None
                recover.append(incident.recovered_at - injected)
                paths.add("+".join(s.action for s in incident.actions) or "none (systemd)")
            rows.append((name, detect, recover, ", ".join(sorted(paths))))
            print(f"{name}: detect {detect}  recover {recover}", flush=True)
    print("\n| fault | runs | detection median (s) | recovery median (s) | repairs |")
    print("|---|---|---|---|---|")
    for name, detects, recovers, taken in rows:
        print(
            f"| {name} | {len(detects)} | {statistics.median(detects):.1f} | "
            f"{statistics.median(recovers):.1f} | {taken} |"
        )
    print(f"(network-cut recovery includes the {NETWORK_CUT_S:.0f} s the link stays cut)")


def persistent(args: argparse.Namespace, work: Path, env: dict[str, str], target: Target) -> None:
    options = ["--cooldown", "2", "--verbose"]
    broken_source = {**env, "MLOPSDEPLOY_MODEL_DIR": str(work / "no-model-here")}
    with BackgroundWatchdog(work / "persistent", options, broken_source) as watchdog:
        watchdog.wait_log(" healthy: ", 120)
        injected = time.time()
        by_name("model-corrupt").inject(target)
        end = injected + args.persistent_minutes * 60
        time.sleep(max(0.0, end - time.time()))  # the fault's duration: the watchdog acts alone
        incidents = [i for i in watchdog.journal.incidents() if i.detected_at >= injected]
        log = watchdog.log()
    repairs = [(round(s.at - injected), s.action) for i in incidents for s in i.actions]
    print(
        f"\npersistent fault for {args.persistent_minutes} min (cooldown 2 s, "
        f"limit 6 repairs/hour): {len(repairs)} repairs at (s, action) {repairs}; "
        f"gave up: {'GIVING UP' in log}; incidents: {[i.state for i in incidents]}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--wipe-runs", type=int, default=3, help="runs of the (slow) wipes")
    parser.add_argument("--faults", default=",".join(FAULTS))
    parser.add_argument("--persistent-minutes", type=float, default=10.0)
    args = parser.parse_args()
    model_dir = DeployOptions().model_dir
    with tempfile.TemporaryDirectory(prefix="bench-watchdog-") as tmp:
        work = Path(tmp)
        with TestVM(f"bench-wd-{os.getpid()}") as vm:
            key = ensure_keypair(work / "own-key")
            cfg = testbed_host(vm, key=key, known_hosts=work / "known_hosts")
            started = time.monotonic()
            result = deploy([cfg], DeployOptions(accept_new_host_key=True)).hosts[0]
            if not result.ok:
                raise SystemExit(f"deploy failed: {result.error}")
            print(f"deployed in {time.monotonic() - started:.1f}s", flush=True)
            env = {
                "MLOPSDEPLOY_CONFIG": str(write_hosts_file(work / "hosts.toml", [cfg])),
                "MLOPSDEPLOY_MODEL_DIR": str(model_dir),
            }
            target = deployed_target(cfg, machine=vm, api=None)
            if args.runs or args.wipe_runs:
                recoverable(args, work, env, target)
            if args.persistent_minutes:
                persistent(args, work, env, target)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
