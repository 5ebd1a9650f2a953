"""Fleet deploy wall times on local testbed VMs: three hosts in one run against one host.

    flock -x /tmp/team/quiet.lock .venv/bin/python bench/fleet.py [--runs 3] [--hosts 3]
        [--vm-cpu PERCENT]

Cold (pristine VMs -> every host gives the right label) and no-op re-runs, one host and then
all hosts in one ``deploy()`` call, alternating so that load drifts hit both alike. Prints
every run, the medians, and the ratio fleet/one against the goal (<= 1.5x: pyinfra runs each
operation across the hosts at once, so a fleet should cost little more than one host).
Between cold runs the VMs are wiped (pristine disk, new host keys), as re-imaged VMs look.
The control-side caches (wheelhouse, app wheel) are warmed first: a user pays them once.
``workers = 1`` per host, as in the fleet VM tests.

The testbed's hosts are containers on the bench machine itself, so their own work (unpacking
the venv, starting a worker, the gate's canaries) shares its cores with the control side.
Every deploy therefore also reports the whole machine's busy CPU seconds (``/proc/stat``), split
into each host VM's own (its cgroup), the control process's and the rest (anything else that ran
on the machine), the seconds each host's VM waited for a free core (its cgroup's
``cpu.pressure``), the phases of its slowest host and the slowest operations with every host's
seconds: a fleet/one ratio above the goal with the deploy's own CPU seconds growing with the host
count (and a wall time near those CPU seconds / cores) is the machine's limit, not the deploy
waiting on one host after another.

``--vm-cpu 50`` measures the other case, hosts with CPU of their own, as separate VMs have:
each VM is held to 50 % of one core (three VMs and the control process can all have their
share at once on two cores), in the one-host deploys as in the fleet's, so the ratio shows
what the deploy itself adds per host (control-side work, waiting for the slowest host).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import tempfile
import time
from contextlib import ExitStack
from dataclasses import dataclass, replace
from pathlib import Path

import httpx
from deploy import settled  # bench/deploy.py, beside this script

from mlopsdeploy.config import HostConfig
from mlopsdeploy.deployment.api import deploy
from mlopsdeploy.deployment.control.ssh_login import ensure_keypair
from mlopsdeploy.deployment.results import DeployOptions
from mlopsdeploy.testbed import TestVM
from mlopsdeploy.testbed.target import testbed_host

GOAL = 1.5
SENTENCE, LABEL = "I am so happy today!", "POSITIVE"


PHASES = ("access", "bootstrap", "connect", "lock", "facts", "prepare", "plan", "ops", "verify")


def _vm_cgroup(name: str) -> Path:
    """The testbed VM's cgroup in the unified hierarchy (hybrid hosts mount it apart)."""
    hybrid = Path(f"/sys/fs/cgroup/unified/mlopsdeploy-testbed/{name}")
    return hybrid if hybrid.exists() else Path(f"/sys/fs/cgroup/mlopsdeploy-testbed/{name}")


def vm_cpu_seconds(name: str) -> float:
    """CPU seconds one testbed VM (its nspawn and every process of the guest) has used."""
    stat = (_vm_cgroup(name) / "cpu.stat").read_text()
    fields = dict(line.split() for line in stat.splitlines())
    return int(fields["usage_usec"]) / 1e6


def vm_cpu_wait_seconds(name: str) -> float:
    """Seconds in which some process of the VM was ready to run but waited for a free core
    (the kernel's pressure stall information, ``cpu.pressure`` "some")."""
    some = (_vm_cgroup(name) / "cpu.pressure").read_text().splitlines()[0]
    return int(some.rsplit("total=", 1)[1]) / 1e6


def _vm_pids(name: str) -> set[int]:
    """Every process of the VM: its nspawn and everything in the guest's cgroups (a cgroup that
    goes away meanwhile, an ended session's, is skipped)."""
    pids: set[int] = set()
    for directory, _, _ in os.walk(_vm_cgroup(name)):
        with contextlib.suppress(FileNotFoundError):
            pids.update(int(pid) for pid in Path(directory, "cgroup.procs").read_text().split())
    return pids


def cap_cpu(name: str, percent: int) -> Path | None:
    """Hold testbed VM ``name`` to ``percent`` of one core, as a VM with its own vCPU share is.

    Without a cap every VM of a deploy competes for the bench machine's cores, so three hosts
    cost three hosts' CPU on the same two cores as one host. With each VM held to a share that
    all of them together can get at once, a fleet deploy meets no more CPU contention than a
    one-host deploy does, and the fleet/one ratio shows what the deploy itself adds. The
    testbed puts a VM only in the unified and the name=systemd hierarchies; on a hybrid host
    the cpu controller lives apart (v1), so the VM's processes are moved into a cgroup of their
    own there; new processes inherit it. Called again after every wipe (a new guest).
    """
    v1 = Path("/sys/fs/cgroup/cpu")
    if (v1 / "cpu.cfs_quota_us").exists():
        cgroup = v1 / "mlopsdeploy-bench" / name
        cgroup.mkdir(parents=True, exist_ok=True)
        (cgroup / "cpu.cfs_period_us").write_text("100000\n")
        (cgroup / "cpu.cfs_quota_us").write_text(f"{percent * 1000}\n")
        moved: set[int] = set()
        # Until no new process shows up: one forked meanwhile by a process not yet moved.
        while pids := _vm_pids(name) - moved:
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    (cgroup / "cgroup.procs").write_text(f"{pid}\n")
            moved |= pids
        return cgroup
    if (_vm_cgroup(name) / "cpu.max").exists():
        (_vm_cgroup(name) / "cpu.max").write_text(f"{percent * 1000} 100000\n")
        return None
    raise SystemExit("--vm-cpu needs the cpu controller (cgroup v1 cpu, or cpu.max on v2)")


def remove_cgroups(cgroups: list[Path]) -> None:
    """Remove the cgroups ``cap_cpu`` made, and their parent once it is empty."""
    for cgroup in cgroups:
        cgroup.rmdir()
    for parent in {cgroup.parent for cgroup in cgroups}:
        with contextlib.suppress(OSError):
            parent.rmdir()


def busy_cpu_seconds() -> float:
    """CPU seconds the whole machine (VMs included) spent busy since boot."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:8]]
    user, nice, system, _idle, _iowait, irq, softirq = fields
    return (user + nice + system + irq + softirq) / os.sysconf("SC_CLK_TCK")


@dataclass
class Run:
    wall: float
    changed: int
    cpu: float
    """Busy CPU seconds of the whole machine during the deploy."""
    phases: dict[str, float]
    """Each phase's seconds on the host that took longest in it."""
    vm_cpu: list[float]
    """CPU seconds each host's VM used during the deploy (its cgroup)."""
    vm_wait: list[float]
    """Seconds each host's VM had work ready to run but no free core (its cgroup's pressure)."""
    control_cpu: float
    """CPU seconds of the control side (this process: the deploy's threads, SSH included)."""
    steps: dict[str, list[float]]
    """Each operation's seconds on each host, in order."""

    def __str__(self) -> str:
        slowest = " ".join(f"{k} {v:.1f}" for k, v in self.phases.items() if v >= 0.5)
        hosts = "+".join(f"{c:.0f}" for c in self.vm_cpu)
        waits = "/".join(f"{w:.0f}" for w in self.vm_wait)
        return (
            f"{self.wall:.1f} s (cpu {self.cpu:.0f} s: hosts {hosts}, control "
            f"{self.control_cpu:.1f}, rest {self.other_cpu:.0f}; hosts waited for a core "
            f"{waits} s; {slowest})"
        )

    @property
    def other_cpu(self) -> float:
        """Busy CPU seconds neither the hosts' VMs nor this process used: the control side's
        child processes (ssh, ssh-keyscan), the kernel's own threads, and anything else that
        ran on the machine meanwhile (another user's VMs and tests)."""
        return self.cpu - sum(self.vm_cpu) - self.control_cpu

    def slowest_steps(self, count: int = 6) -> str:
        """The operations that took longest on some host, with every host's seconds."""
        top = sorted(self.steps.items(), key=lambda item: -max(item[1]))[:count]
        return "; ".join(f"{name} " + "/".join(f"{s:.1f}" for s in each) for name, each in top)


def timed_deploy(cfgs: list[HostConfig], vms: list[TestVM], options: DeployOptions) -> Run:
    """Seconds from the deploy call until every host gives the right label, and what it cost."""
    start, cpu, control = time.monotonic(), busy_cpu_seconds(), time.process_time()
    vm_cpu = [vm_cpu_seconds(vm.name) for vm in vms]
    vm_wait = [vm_cpu_wait_seconds(vm.name) for vm in vms]
    result = deploy(cfgs, options)
    if not result.ok:
        raise SystemExit(f"deploy failed: {[str(h.error) for h in result.hosts if h.error]}")
    for cfg in cfgs:
        answer = httpx.post(f"{cfg.url}/api/sentiment", json={"text": SENTENCE}, timeout=30)
        if answer.json()["label"] != LABEL:
            raise SystemExit(f"{cfg.name}: wrong label after deploy: {answer.text}")
    wall = time.monotonic() - start
    phases = {k: max(h.timings.get(k, 0.0) for h in result.hosts) for k in PHASES}
    steps: dict[str, list[float]] = {}
    for h in result.hosts:
        for step in h.steps:
            steps.setdefault(step.name, []).append(step.seconds)
    run = Run(
        wall=wall,
        changed=sum(len(h.changed) for h in result.hosts),
        cpu=busy_cpu_seconds() - cpu,
        phases=phases,
        vm_cpu=[vm_cpu_seconds(vm.name) - used for vm, used in zip(vms, vm_cpu, strict=True)],
        vm_wait=[
            vm_cpu_wait_seconds(vm.name) - waited for vm, waited in zip(vms, vm_wait, strict=True)
        ],
        control_cpu=time.process_time() - control,
        steps=steps,
    )
    # After the figures, not part of the deploy: a deploy returns when the workers accept, and
    # they build their UI after that. Without this wait the next deploy measured shares the cores
    # with those builds (after three hosts, two still built theirs while the one-host one ran).
    for vm, cfg in zip(vms, cfgs, strict=True):
        settled(vm, cfg)
    return run


def wipe(vm: TestVM, cfg: HostConfig, cpu: int | None, timeout: float = 60) -> None:
    """Re-image ``vm`` and return once its old instance's app port is closed too (and the new
    guest is held to ``cpu`` percent of a core, when given).

    The wiped VM keeps its network namespace, and the old guest's processes can outlive the
    wipe by a moment on a busy machine: a cold deploy then found "port 8000 (app port) is
    already taken" by a listener no process of the new guest owns (seen once at load 5).
    """
    vm.wipe()
    deadline = time.monotonic() + timeout
    while vm.run(f"ss -Hltn 'sport = :{cfg.serve_port}'").stdout.strip():
        if time.monotonic() > deadline:
            raise SystemExit(f"{vm.name}: port {cfg.serve_port} still taken after the wipe")
        time.sleep(0.2)
    if cpu is not None:
        cap_cpu(vm.name, cpu)


def load() -> str:
    return "/".join(f"{value:.2f}" for value in os.getloadavg())


def report(kind: str, one: list[Run], fleet: list[Run], hosts: int) -> None:
    def line(label: str, runs: list[Run]) -> str:
        walls = [r.wall for r in runs]
        each = ", ".join(f"{w:.1f}" for w in walls)
        spread = f"range {min(walls):.1f}-{max(walls):.1f}"
        cpu, cores = statistics.median(r.cpu for r in runs), os.cpu_count() or 1
        hosts_cpu = statistics.median(sum(r.vm_cpu) for r in runs)
        control = statistics.median(r.control_cpu for r in runs)
        rest = statistics.median(r.other_cpu for r in runs)
        wait = statistics.median(max(r.vm_wait) for r in runs)
        return (
            f"  {label}: median {statistics.median(walls):.2f} s ({each}; {spread}); "
            f"busy CPU median {cpu:.0f} s (/ {cores} cores = {cpu / cores:.0f} s), of it the "
            f"hosts' VMs {hosts_cpu:.1f} s, the control process {control:.1f} s, the rest "
            f"{rest:.1f} s; the deploy's own CPU (VMs + control) / {cores} cores = "
            f"{(hosts_cpu + control) / cores:.1f} s; the host that waited longest for a core "
            f"{wait:.1f} s"
        )

    ratio = statistics.median(r.wall for r in fleet) / statistics.median(r.wall for r in one)
    cpu_ratio = statistics.median(r.cpu for r in fleet) / statistics.median(r.cpu for r in one)
    print(f"\n{kind}:")
    print(line("1 host ", one))
    print(line(f"{hosts} hosts", fleet))
    verdict = "meets" if ratio <= GOAL else "misses"
    print(f"  ratio {hosts}/1: {ratio:.2f}x (goal <= {GOAL}x: {verdict} it)", flush=True)
    print(f"  busy CPU ratio {hosts}/1: {cpu_ratio:.2f}x", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--hosts", type=int, default=3)
    parser.add_argument("--model", type=Path, default=DeployOptions().model_dir)
    parser.add_argument(
        "--vm-cpu",
        type=int,
        metavar="PERCENT",
        help="hold each VM to this share of one core, as separate VMs with their own vCPU are",
    )
    prefix = os.environ.get("MLOPSDEPLOY_VM_PREFIX", "bench")
    parser.add_argument("--vm-prefix", default=f"{prefix}-fleet-{os.getpid()}")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-fleet-") as tmp, ExitStack() as stack:
        root = Path(tmp)
        options = replace(DeployOptions(), model_dir=args.model, accept_new_host_key=True)
        key = ensure_keypair(root / "id")
        capped: list[Path] = []
        # Registered before the VMs, so it runs after their teardown emptied these cgroups.
        stack.callback(remove_cgroups, capped)
        vms = [stack.enter_context(TestVM(f"{args.vm_prefix}-{i}")) for i in range(args.hosts)]
        if args.vm_cpu is not None:
            capped += [c for vm in vms if (c := cap_cpu(vm.name, args.vm_cpu)) is not None]
            print(f"each VM held to {args.vm_cpu}% of one core")
        cfgs = [
            replace(testbed_host(vm, key=key, known_hosts=root / "kh"), workers=1) for vm in vms
        ]
        start = time.monotonic()
        deploy(cfgs[:1], options)  # warms the control-side caches; not counted
        print(f"control-side caches + first deploy: {time.monotonic() - start:.1f} s")
        print(f"load average (1/5/15 min) at the start: {load()}", flush=True)
        cold_one: list[Run] = []
        cold_all: list[Run] = []
        noop_one: list[Run] = []
        noop_all: list[Run] = []
        for _ in range(args.runs):
            wipe(vms[0], cfgs[0], args.vm_cpu)
            cold_one.append(timed_deploy(cfgs[:1], vms[:1], options))
            for vm, cfg in zip(vms, cfgs, strict=True):
                wipe(vm, cfg, args.vm_cpu)
            cold_all.append(timed_deploy(cfgs, vms, options))
            print(f"cold: 1 host {cold_one[-1]}, {args.hosts} hosts {cold_all[-1]}, load {load()}")
            print(f"  slowest steps, 1 host: {cold_one[-1].slowest_steps()}")
            print(f"  slowest steps, {args.hosts} hosts: {cold_all[-1].slowest_steps()}")
        for _ in range(args.runs):
            noop_one.append(timed_deploy(cfgs[:1], vms[:1], options))
            noop_all.append(timed_deploy(cfgs, vms, options))
            print(
                f"no-op: 1 host {noop_one[-1]} ({noop_one[-1].changed} changes), {args.hosts} "
                f"hosts {noop_all[-1]} ({noop_all[-1].changed} changes), load {load()}"
            )
            print(f"  slowest steps, {args.hosts} hosts: {noop_all[-1].slowest_steps(3)}")
        report("cold deploy", cold_one, cold_all, args.hosts)
        report("no-op deploy", noop_one, noop_all, args.hosts)
        # Printed before the VMs are torn down: a failing teardown must not lose the figures.
        print(f"load average (1/5/15 min) at the end: {load()}", flush=True)


if __name__ == "__main__":
    main()
