"""Benchmark what users see during faults: the old single unit vs the socket and its workers.

    touch /tmp/team/bench-waiting; flock -x /tmp/team/quiet.lock sh -c \
        'rm -f /tmp/team/bench-waiting; uptime; .venv/bin/python bench/zero_downtime.py; uptime'
    .venv/bin/python bench/zero_downtime.py --runs 1 --only service-stop,kill-user

One test VM, in one run: the app as committed at HEAD is deployed, then put back into the old
layout (one `mlopsdeploy.service` that binds the port itself, exactly the unit earlier versions
installed), measured, then moved to the new layout by a plain deploy (the upgrade path) and
measured again.
Each measurement runs a `ClientLoad` (``--rate`` requests/s to the VM's own address, a new
connection each) from steady state until the app answers correctly again plus a settling second,
and reports failed requests (after the fault / in flight at it), the longest gap without a
correct answer and the p99 latency. For the rolling faults the fault *is* the roll, so the load
counts from the start of the injection, as the resilience suite counts it.

Faults (the new layout's are the resilience suite's own, `mlopsdeploy.faults`):

- sigkill: SIGKILL to the serving process (old) or to worker 1 (new, until systemd replaced it);
- release-switch: `current` re-pointed and the app restarted as the deploy does it (old: one
  `systemctl restart`; new: each worker in turn, the next after the previous said READY=1);
- sigstop-worker: SIGSTOP to worker 1 until systemd's watchdog replaced it;
- rolling-restart, rollback (to a second, tagged release; swapped back after the measurement);
- service-restart, service-stop (the socket starts the app again on the next connection);
- kill-user: every process of the deploy user, its user manager and the socket with it; the
  recovery is the deploy, run at once (as the suite does).

Beside the whole-service faults it prints one worker's start (its process start to "Serving the
socket systemd holds", from the journal): a worker restarted alone while the other serves, and
worker 1 in each service-stop (both workers start at once there). The goal for a whole-service
fault is an outage of at most that start + 2 s.

Needs root and the offline model (build/model), like the VM tests. Prints medians and ranges.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from mlopsdeploy.config import HostConfig
from mlopsdeploy.deployment.control.ssh_login import ensure_keypair
from mlopsdeploy.deployment.host_commands import USER_RUNTIME_DIR
from mlopsdeploy.deployment.operations import service, workers
from mlopsdeploy.faults import (
    Fault,
    HangApp,
    KillApp,
    KillUser,
    ReleaseSwitch,
    RestartService,
    RollbackRelease,
    RollingRestart,
    StopService,
    Target,
)
from mlopsdeploy.resilience.experiment import DeployRequest
from mlopsdeploy.resilience.load import ClientLoad, LoadReport
from mlopsdeploy.resilience.probes import AppProbe, poll
from mlopsdeploy.resilience.subjects import LibraryDeployer, deployed_target
from mlopsdeploy.testbed import TestVM
from mlopsdeploy.testbed.target import testbed_host

STEADY_S = 3.0
SETTLE_S = 1.0
RECOVER_S = 300.0
REPO = Path(__file__).resolve().parent.parent
#: the new layout's faults, in the order they run (rollback's second release is deployed first)
NEW_FAULTS = (
    "sigkill",
    "sigstop-worker",
    "release-switch",
    "rolling-restart",
    "rollback",
    "service-restart",
    "service-stop",
    "kill-user",
)
OLD_FAULTS = ("sigkill", "release-switch")


class Bench:
    def __init__(
        self, vm: TestVM, cfg: HostConfig, key: Path, rate: float, deployer: LibraryDeployer
    ) -> None:
        self.vm, self.cfg, self.key, self.rate, self.deployer = vm, cfg, key, rate, deployer
        self.probe = AppProbe(cfg.url)
        self.target = deployed_target(cfg, vm, None)
        self.starts_alone: list[float] = []
        self.starts_in_stop: list[float] = []
        self.recovery_deploys: list[float] = []

    def sh(self, command: str) -> str:
        return self.vm.run(f"export {USER_RUNTIME_DIR}; {command}", key=self.key).stdout

    def measure(
        self,
        fault: Callable[[], object],
        recovered: Callable[[], bool],
        from_injection: bool = False,
    ) -> LoadReport:
        """Load from steady state; `fault`; load until `recovered()` and a correct answer."""
        with ClientLoad(self.cfg.url, rate=self.rate) as load:
            time.sleep(STEADY_S)  # the steady state the fault interrupts, part of the experiment
            if from_injection:
                load.mark_fault()
            fault()
            if not from_injection:
                load.mark_fault()
            deadline = time.monotonic() + RECOVER_S
            while not recovered() and time.monotonic() < deadline:
                time.sleep(0.2)
            if not poll(self.probe.correct, RECOVER_S).ok:
                raise RuntimeError("the app did not answer correctly again")
            time.sleep(SETTLE_S)
        return load.report()

    # -- the old single unit ------------------------------------------------------------------

    def to_old_layout(self) -> None:
        """The single unit of earlier versions, serving the same release."""
        units = f"{workers.TARGET} {workers.SOCKET} '{workers.PREFIX}@*'"
        self.sh(f"systemctl --user disable --now {units}")
        legacy = f"{service.unit_dir(self.cfg)}/{service.UNIT}"
        text = service.render_unit(self.cfg).replace("'", "'\\''")
        self.sh(f"printf '%s' '{text}' > {legacy} && systemctl --user daemon-reload")
        self.sh(f"systemctl --user enable --now {service.UNIT}")
        if not poll(self.probe.correct, RECOVER_S).ok:
            raise RuntimeError("the old layout did not serve")

    def old_pid(self) -> str:
        return self.sh(f"systemctl --user show -p MainPID --value {service.UNIT}").strip()

    def old(self, name: str) -> LoadReport:
        if name == "sigkill":
            before = self.old_pid()
            return self.measure(
                lambda: self.sh(f"kill -KILL {before}"),
                lambda: self.old_pid() not in ("0", before) and self.probe.correct().ok,
            )
        relink = "ln -sfn $(readlink ~/mlopsdeploy/current) ~/mlopsdeploy/.current.new"
        swap = f"{relink} && mv -T ~/mlopsdeploy/.current.new ~/mlopsdeploy/current"
        return self.measure(
            lambda: self.sh(f"{swap} && systemctl --user restart {service.UNIT}"),
            lambda: self.probe.correct().ok,
            from_injection=True,
        )

    # -- the socket and its workers -----------------------------------------------------------

    def new(self, name: str) -> LoadReport:
        target = self.target
        rolls: dict[str, Fault] = {
            "release-switch": ReleaseSwitch(),
            "rolling-restart": RollingRestart(),
            "rollback": RollbackRelease(),
        }
        if name in rolls:
            fault = rolls[name]
            report = self.measure(lambda: fault.inject(target), lambda: True, from_injection=True)
            if name == "rollback":
                fault.undo(target)  # back to the release it rolled back from, outside the load
            return report
        if name in ("sigkill", "sigstop-worker"):
            worker = KillApp(worker=1) if name == "sigkill" else HangApp(worker=1)
            return self.measure(lambda: worker.inject(target), lambda: _done(worker.undo, target))
        if name == "service-restart":
            restart = RestartService()
            return self.measure(lambda: restart.inject(target), lambda: True, from_injection=True)
        if name == "service-stop":
            stop = StopService()
            report = self.measure(lambda: stop.inject(target), self.target_active)
            self.starts_in_stop.append(self.start_to_serving(workers.worker_unit(1)))
            return report
        if name == "kill-user":
            kill = KillUser()
            report = self.measure(lambda: kill.inject(target), self.redeployed)
            return report
        raise ValueError(name)

    def target_active(self) -> bool:
        return self.sh(f"systemctl --user is-active {workers.TARGET} || true").strip() == "active"

    def redeployed(self) -> bool:
        """The kill-user recovery: the deploy, as the suite runs it (its login brings the user
        manager back)."""
        run = self.deployer(DeployRequest("recover from kill-user"))
        if not run.ok:
            raise RuntimeError(f"the recovery deploy failed: {run.error}")
        self.recovery_deploys.append(run.seconds)
        return True

    def start_to_serving(self, unit: str) -> float:
        """Seconds from `unit`'s process start to its "Serving the socket" line (journal)."""
        show = f"systemctl --user show -p MainPID,ExecMainStartTimestampMonotonic {unit}"
        props = dict(line.split("=", 1) for line in self.sh(show).split())
        entries = self.sh(f"journalctl --user _PID={props['MainPID']} -o json --no-pager")
        for line in entries.splitlines():
            entry = json.loads(line)
            if "Serving the socket systemd holds" in str(entry.get("MESSAGE", "")):
                serving = int(entry["__MONOTONIC_TIMESTAMP"])
                return round((serving - int(props["ExecMainStartTimestampMonotonic"])) / 1e6, 3)
        raise RuntimeError(f"{unit} (pid {props['MainPID']}) never served the socket")

    def start_alone(self) -> None:
        """Worker 2 restarted while worker 1 serves: one worker's start, nothing else starting."""
        unit = workers.worker_unit(2)
        self.sh(f"systemctl --user restart {unit}")
        self.starts_alone.append(self.start_to_serving(unit))


def committed_app(state: Path) -> Path:
    """The app as committed at HEAD (not the working tree others edit), one release id."""
    archive = subprocess.run(
        ["git", "-C", str(REPO), "archive", "--format=tar", "HEAD", "app"],
        capture_output=True,
        check=True,
    ).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(state, filter="data")
    return state / "app"


def _done(wait: Callable[[Target], None], target: Target) -> bool:
    wait(target)
    return True


def stat(values: list[float]) -> str:
    return f"{statistics.median(values):g} ({min(values):g}-{max(values):g})"


def summary(name: str, reports: list[LoadReport]) -> str:
    kinds: dict[str, int] = {}
    for report in reports:
        for kind, count in report.failures.items():
            kinds[kind] = kinds.get(kind, 0) + count
    return (
        f"{name:<24} failed after fault {stat([r.failed_after_fault for r in reports]):<14}"
        f" in flight {stat([r.failed_in_flight for r in reports]):<12}"
        f" longest gap {stat([r.longest_gap_s for r in reports])} s"
        f"  p99 {stat([r.p99_latency_s for r in reports])} s"
        + (f"  failures {kinds}" if kinds else "")
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--rate", type=float, default=20.0)
    parser.add_argument("--model", type=Path, default=REPO / "build/model")
    parser.add_argument(
        "--only", default="", help="comma-separated faults of the new layout (skips the old one)"
    )
    args = parser.parse_args()
    new_faults = [n for n in NEW_FAULTS if not args.only or n in args.only.split(",")]
    state = Path(tempfile.mkdtemp(prefix="bench-zero-downtime-"))
    token = state / "hf_token"
    token.write_text("hf_bench_" + os.urandom(8).hex())
    token.chmod(0o600)
    key = ensure_keypair(state / "id_ed25519")
    prefix = os.environ.get("MLOPSDEPLOY_VM_PREFIX", "bench")
    vm = TestVM(f"{prefix}-zero-downtime-{os.getpid()}").up()
    try:
        cfg = replace(
            testbed_host(vm, key=key, known_hosts=state / "known_hosts"), hf_token_file=token
        )
        app = committed_app(state)
        deployer = LibraryDeployer(cfg, args.model, app, state / "scratch")
        first = deployer(DeployRequest("first deploy"))
        if not first.ok:
            raise RuntimeError(f"the first deploy failed: {first.error}")
        bench = Bench(vm, cfg, key, args.rate, deployer)
        results: dict[str, list[LoadReport]] = {}
        if not args.only:
            bench.to_old_layout()
            for name in OLD_FAULTS:
                results[f"old {name}"] = [bench.old(name) for _ in range(args.runs)]
                print(summary(f"old {name}", results[f"old {name}"]), flush=True)
        # The upgrade path (single unit -> socket + workers), or a no-op on the new layout.
        # With a rollback to measure, a second release goes out: `previous` is the first.
        tag = "second" if "rollback" in new_faults else None
        upgrade = deployer(DeployRequest("upgrade", release_tag=tag))
        if not upgrade.ok:
            raise RuntimeError(f"the upgrade deploy failed: {upgrade.error}")
        for _ in range(args.runs):
            bench.start_alone()
        for name in new_faults:
            results[f"new {name}"] = [bench.new(name) for _ in range(args.runs)]
            print(summary(f"new {name}", results[f"new {name}"]), flush=True)
        commit = subprocess.run(
            ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
        ).stdout.strip()
        print(
            f"app at {commit}; runs: {args.runs}, load: {args.rate:g} requests/s,"
            f" workers: {cfg.workers}"
        )
        print(f"load average at the end: {os.getloadavg()}")
        for name, reports in results.items():  # all together at the end
            print(summary(name, reports))
        print(f"one worker's start, alone (process start -> serving): {stat(bench.starts_alone)} s")
        if bench.starts_in_stop:
            print(
                f"worker 1's start in service-stop (both at once): {stat(bench.starts_in_stop)} s"
            )
        if bench.recovery_deploys:
            print(f"kill-user recovery deploy: {stat(bench.recovery_deploys)} s")
    finally:
        vm.destroy()


if __name__ == "__main__":
    main()
