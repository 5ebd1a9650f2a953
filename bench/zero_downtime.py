"""Benchmark what users see during a SIGKILL and a release switch: old single unit vs workers.

    flock /tmp/team/bench.lock .venv/bin/python bench/zero_downtime.py [--runs 3] [--rate 20]

One test VM, in one run: the app is deployed, then put back into the old layout (one
`mlopsdeploy.service` that binds the port itself, exactly the unit earlier versions installed),
measured, then moved to the new layout by a plain deploy (the upgrade path) and measured again.
Each measurement runs a `ClientLoad` (``--rate`` requests/s to the VM's own address, a new
connection each) from steady state until the app answers correctly again plus a settling second,
and reports failed requests (after the fault / in flight at it), the longest gap without a
correct answer and the p99 latency. Faults:

- sigkill: SIGKILL to the serving process (old) or to worker 1 (new);
- release switch: `current` re-pointed and the app restarted as the deploy does it (old: one
  `systemctl restart`; new: each worker in turn, the next after the previous said READY=1).

Needs root and the offline model (build/model), like the VM tests. Prints medians and ranges.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from mlopsdeploy.config import HostConfig
from mlopsdeploy.deployment.api import deploy
from mlopsdeploy.deployment.control.ssh_login import ensure_keypair
from mlopsdeploy.deployment.host_commands import USER_RUNTIME_DIR
from mlopsdeploy.deployment.operations import service, workers
from mlopsdeploy.deployment.results import DeployOptions
from mlopsdeploy.resilience.load import ClientLoad, LoadReport
from mlopsdeploy.resilience.probes import AppProbe, poll
from mlopsdeploy.testbed import TestVM
from mlopsdeploy.testbed.target import testbed_host

STEADY_S = 3.0
SETTLE_S = 1.0
RECOVER_S = 300.0


class Bench:
    def __init__(self, vm: TestVM, cfg: HostConfig, key: Path, rate: float) -> None:
        self.vm, self.cfg, self.key, self.rate = vm, cfg, key, rate
        self.probe = AppProbe(cfg.url)

    def sh(self, command: str) -> str:
        return self.vm.run(f"export {USER_RUNTIME_DIR}; {command}", key=self.key).stdout

    def measure(self, fault: Callable[[], object], recovered: Callable[[], bool]) -> LoadReport:
        """Load from steady state; `fault`; load until `recovered()` and a correct answer."""
        with ClientLoad(self.cfg.url, rate=self.rate) as load:
            time.sleep(STEADY_S)  # the steady state the fault interrupts, part of the experiment
            fault()
            load.mark_fault()
            deadline = time.monotonic() + RECOVER_S
            while not recovered() and time.monotonic() < deadline:
                time.sleep(0.2)
            if not poll(self.probe.correct, RECOVER_S).ok:
                raise RuntimeError("the app did not answer correctly again")
            time.sleep(SETTLE_S)
        return load.report()

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

    def old_sigkill(self) -> LoadReport:
        before = self.old_pid()
        return self.measure(
            lambda: self.sh(f"kill -KILL {before}"),
            lambda: self.old_pid() not in ("0", before) and self.probe.correct().ok,
        )

    def old_switch(self) -> LoadReport:
        relink = "ln -sfn $(readlink ~/mlopsdeploy/current) ~/mlopsdeploy/.current.new"
        swap = f"{relink} && mv -T ~/mlopsdeploy/.current.new ~/mlopsdeploy/current"
        return self.measure(
            lambda: self.sh(f"{swap} && systemctl --user restart {service.UNIT}"),
            lambda: self.probe.correct().ok,
        )

    def worker_pid(self, n: int) -> str:
        unit = workers.worker_unit(n)
        return self.sh(f"systemctl --user show -p MainPID --value {unit}").strip()

    def new_sigkill(self) -> LoadReport:
        before = self.worker_pid(1)
        return self.measure(
            lambda: self.sh(f"kill -KILL {before}"),
            lambda: (
                self.worker_pid(1) not in ("0", before)
                and self.sh(f"systemctl --user is-active {workers.worker_unit(1)} || true").strip()
                == "active"
            ),
        )

    def new_switch(self) -> LoadReport:
        relink = "ln -sfn $(readlink ~/mlopsdeploy/current) ~/mlopsdeploy/.current.new"
        swap = f"{relink} && mv -T ~/mlopsdeploy/.current.new ~/mlopsdeploy/current"
        roll = " && ".join(f"systemctl --user restart {u}" for u in workers.worker_units(self.cfg))
        return self.measure(lambda: self.sh(f"{swap} && {roll}"), lambda: True)


def summary(name: str, reports: list[LoadReport]) -> str:
    def stat(values: list[float]) -> str:
        return f"{statistics.median(values):g} ({min(values):g}-{max(values):g})"

    return (
        f"{name:<22} failed after fault {stat([r.failed_after_fault for r in reports]):<14}"
        f" in flight {stat([r.failed_in_flight for r in reports]):<12}"
        f" longest gap {stat([r.longest_gap_s for r in reports])} s"
        f"  p99 {stat([r.p99_latency_s for r in reports])} s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--rate", type=float, default=20.0)
    parser.add_argument("--model", type=Path, default=Path("build/model"))
    args = parser.parse_args()
    state = Path(tempfile.mkdtemp(prefix="bench-zero-downtime-"))
    token = state / "hf_token"
    token.write_text("hf_bench_" + os.urandom(8).hex())
    token.chmod(0o600)
    key = ensure_keypair(state / "id_ed25519")
    vm = TestVM(f"zd-bench-{os.getpid()}").up()
    try:
        cfg = replace(
            testbed_host(vm, key=key, known_hosts=state / "known_hosts"), hf_token_file=token
        )
        options = DeployOptions(model_dir=args.model, cache_dir=state / "cache")
        deploy([cfg], options).raise_for_errors()
        bench = Bench(vm, cfg, key, args.rate)
        bench.to_old_layout()
        results = {
            "old sigkill": [bench.old_sigkill() for _ in range(args.runs)],
            "old release switch": [bench.old_switch() for _ in range(args.runs)],
        }
        upgrade = deploy([cfg], options)  # the upgrade path: single unit -> socket + workers
        upgrade.raise_for_errors()
        results["new sigkill worker 1"] = [bench.new_sigkill() for _ in range(args.runs)]
        results["new release switch"] = [bench.new_switch() for _ in range(args.runs)]
        print(f"runs: {args.runs}, load: {args.rate:g} requests/s, workers: {cfg.workers}")
        print(f"load average at the end: {os.getloadavg()}")
        for name, reports in results.items():
            print(summary(name, reports))
    finally:
        vm.destroy()


if __name__ == "__main__":
    main()
