"""The machine cgroups are found in the hierarchies nspawn actually uses."""

from __future__ import annotations

from pathlib import Path

from mlopsdeploy.testbed.cgroups import PARENT, hierarchy_roots, machine_cgroups


def test_every_root_is_a_mounted_cgroup_hierarchy() -> None:
    mounted = Path("/proc/self/mountinfo").read_text()
    for root in hierarchy_roots():
        assert (root / "cgroup.procs").exists()
        assert f" {root} " in mounted


def test_a_unified_hierarchy_is_always_among_them() -> None:
    mountinfo = Path("/proc/self/mountinfo").read_text().splitlines()
    fstypes = [line.split(" - ")[1].split()[0] for line in mountinfo]
    assert ("cgroup2" in fstypes) == any(
        (root / "cgroup.controllers").exists() for root in hierarchy_roots()
    )


def test_machine_cgroups_sit_below_the_testbed_parent() -> None:
    for cgroup in machine_cgroups("vm1"):
        assert cgroup.parent.name == PARENT and cgroup.name == "vm1"
