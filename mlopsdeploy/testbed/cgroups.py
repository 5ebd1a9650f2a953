"""A cgroup of its own for every machine.

There is no systemd on the host, so `systemd-nspawn --keep-unit` builds the container's cgroups
below the cgroup it was started in (`…/payload`). Started from one cgroup, every machine's
systemd would manage the *same* tree — `payload/system.slice/app.service` for all of them — and
stopping a unit in one guest would kill that unit's processes in every other guest. So each
nspawn is started in `mlopsdeploy-testbed/<machine>` of every hierarchy nspawn uses: the
unified (v2) one and, on hybrid hosts, the v1 `name=systemd` one.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

PARENT = "mlopsdeploy-testbed"


def hierarchy_roots() -> list[Path]:
    """Mount points of the cgroup hierarchies systemd-nspawn places containers in."""
    roots = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        fields = line.split()
        separator = fields.index("-")
        fstype, options = fields[separator + 1], fields[separator + 3].split(",")
        if fstype == "cgroup2" or (fstype == "cgroup" and "name=systemd" in options):
            roots.append(Path(fields[4]))
    return roots


def machine_cgroups(name: str) -> list[Path]:
    return [root / PARENT / name for root in hierarchy_roots()]


def create(name: str) -> list[Path]:
    cgroups = machine_cgroups(name)
    for cgroup in cgroups:
        cgroup.mkdir(parents=True, exist_ok=True)
    return cgroups


def enter(cgroups: list[Path]) -> None:
    """Move the calling process into `cgroups` (in a child between fork and exec)."""
    for cgroup in cgroups:
        (cgroup / "cgroup.procs").write_text("0\n")


def kill(name: str, timeout: float = 60) -> None:
    """SIGKILL whatever is left in the machine's cgroups and wait until they are empty.

    The sure way to leave no process behind (even one no pid file knows about) while touching
    nothing outside this machine: only its nspawn and guest ever run in these cgroups. At load
    average 12-18 a killed guest took more than 10 s to leave them (two teardowns failed so).
    """
    for cgroup in machine_cgroups(name):
        if not (cgroup / "cgroup.kill").exists():
            continue
        (cgroup / "cgroup.kill").write_text("1\n")
        deadline = time.monotonic() + timeout
        while "populated 1" in (cgroup / "cgroup.events").read_text():
            if time.monotonic() > deadline:
                raise RuntimeError(f"processes survive SIGKILL in {cgroup}")
            time.sleep(0.02)


def remove(name: str) -> None:
    """Remove the machine's cgroups, deepest first (the guest's systemd made sub-cgroups).

    Fails if a process is still inside (EBUSY): that would be a leak worth hearing about.
    """
    for cgroup in machine_cgroups(name):
        if cgroup.exists():
            for directory, _, _ in os.walk(cgroup, topdown=False):
                os.rmdir(directory)
