"""Nothing a machine used survives its teardown: not after a clean run, a failed test, an
interrupted session, or a test process killed outright (then `cleanup_stale` removes it).

Leftovers are looked up the way an admin would — the kernel's mount table, `ip netns`,
`ip link`, the process table — not through the testbed's own bookkeeping.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from mlopsdeploy.testbed import Image, TestVM, cleanup_stale
from mlopsdeploy.testbed.pytest_plugin import machine_name


def leftovers(name: str, index: int, machine_dir: Path) -> list[str]:
    """Everything of machine `name` still present on the host, in words."""
    found = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        if str(machine_dir) in line.split()[4]:
            found.append(f"mount {line.split()[4]}")
    netns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    found += [f"netns {line}" for line in netns.splitlines() if line.split()[0].endswith(name)]
    links = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True).stdout
    found += [f"link {line.split()[1]}" for line in links.splitlines() if f"mdtb{index}@" in line]
    for proc in Path("/proc").iterdir():
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if proc.name.isdigit() and str(machine_dir) in cmdline:
            found.append(f"process {proc.name}: {cmdline[:120]}")
    if machine_dir.exists():
        found.append(f"directory {machine_dir}")
    cgroups = Path("/sys/fs/cgroup").glob(f"**/mlopsdeploy-testbed/{name}")
    found += [f"cgroup {cgroup}" for cgroup in cgroups]
    return found


def test_context_manager_tears_down_after_an_error(testbed_image: Image) -> None:
    vm = TestVM(machine_name(), testbed_image)
    with pytest.raises(RuntimeError, match="boom"), vm:
        index, machine_dir = vm.index, vm.dir
        assert leftovers(vm.name, index, machine_dir), "a running machine is visible"
        raise RuntimeError("boom")
    assert leftovers(vm.name, index, machine_dir) == []
    assert not vm.exists()


def test_destroy_is_idempotent_and_handles_a_half_created_machine(testbed_image: Image) -> None:
    vm = TestVM(machine_name(), testbed_image).create()
    index, machine_dir = vm.index, vm.dir
    vm.overlay.mount()  # as if the owner died between mounting and booting
    vm.destroy()
    vm.destroy()
    assert leftovers(vm.name, index, machine_dir) == []


def test_destroy_leaves_nothing_even_when_the_pid_files_are_lost(testbed_image: Image) -> None:
    vm = TestVM(machine_name(), testbed_image).up()
    index, machine_dir = vm.index, vm.dir
    for pid_file in ("supervisor.pid", "nspawn.pid"):
        (machine_dir / pid_file).unlink()
    vm.destroy()
    assert leftovers(vm.name, index, machine_dir) == []


CRASHING_OWNER = """
import os, signal
from mlopsdeploy.testbed import TestVM
TestVM({name!r}).up()
print("up", flush=True)
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_machines_of_a_killed_owner_are_removed_by_cleanup_stale(testbed_image: Image) -> None:
    name = machine_name()
    owner = subprocess.Popen(
        [sys.executable, "-c", CRASHING_OWNER.format(name=name)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "MLOPSDEPLOY_TESTBED_DIR": str(testbed_image.state.root)},
    )
    out, _ = owner.communicate(timeout=120)
    assert (out.strip(), owner.returncode) == ("up", -signal.SIGKILL)
    vm = TestVM(name, testbed_image)
    index, machine_dir = vm.index, vm.dir
    assert vm.run("true").returncode == 0, "the orphaned machine still runs"

    assert cleanup_stale(prefix=name) == [name]

    assert leftovers(name, index, machine_dir) == []
    assert cleanup_stale(prefix=name) == []


INNER_TESTS = """
import json, os
from pathlib import Path

def record(vm):
    with Path(os.environ["RECORD"]).open("a") as out:
        out.write(json.dumps({"name": vm.name, "index": vm.index, "dir": str(vm.dir)}) + "\\n")

def test_fails(test_vm):
    record(test_vm)
    assert test_vm.run("false", check=False).returncode == 0

def test_interrupted(test_vm_factory):
    record(test_vm_factory())
    record(test_vm_factory())
    raise KeyboardInterrupt
"""
INNER_PYTEST = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
INNER_PYTEST += ["-p", "mlopsdeploy.testbed.pytest_plugin"]


def test_a_failed_and_interrupted_session_leaves_nothing(
    testbed_image: Image, tmp_path: Path
) -> None:
    (tmp_path / "test_inner.py").write_text(INNER_TESTS)
    record = tmp_path / "machines.jsonl"
    inner = subprocess.run(
        [*INNER_PYTEST, str(tmp_path / "test_inner.py")],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        env={
            **os.environ,
            "RECORD": str(record),
            "MLOPSDEPLOY_TESTBED_DIR": str(testbed_image.state.root),
        },
    )
    assert inner.returncode == 2, inner.stdout  # interrupted, after one failure
    assert "1 failed" in inner.stdout
    machines = [json.loads(line) for line in record.read_text().splitlines()]
    assert len(machines) == 3
    for machine in machines:
        assert leftovers(machine["name"], machine["index"], Path(machine["dir"])) == []
