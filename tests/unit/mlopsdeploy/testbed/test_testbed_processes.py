"""Pid files identify one process for good: a reused pid or a dead process never matches."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

from mlopsdeploy.testbed.processes import ProcessId, namespace_init


def test_current_process_is_alive_and_round_trips_through_a_pid_file(tmp_path: Path) -> None:
    me = ProcessId.current()
    me.write(tmp_path / "me.pid")
    assert ProcessId.read(tmp_path / "me.pid") == me
    assert me.alive()


def test_a_reused_pid_is_not_the_recorded_process() -> None:
    me = ProcessId.current()
    impostor = ProcessId(me.pid, me.start + 1)
    assert not impostor.alive()
    assert impostor.signal(signal.SIGTERM) is False


def test_an_exited_child_is_gone_even_before_it_is_reaped() -> None:
    reader = [sys.executable, "-c", "import sys; sys.stdin.read()"]
    child = subprocess.Popen(reader, stdin=subprocess.PIPE)
    identity = ProcessId.of(child.pid)
    assert identity is not None and identity.alive()
    assert child.stdin is not None
    child.stdin.close()
    deadline = time.monotonic() + 30
    while Path(f"/proc/{child.pid}/stat").read_text().split(") ")[1][0] != "Z":
        assert time.monotonic() < deadline, "child did not exit after stdin closed"
    assert not identity.alive()
    assert identity.signal(signal.SIGKILL) is False
    child.wait()


def test_signal_reaches_the_recorded_process() -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    identity = ProcessId.of(child.pid)
    assert identity is not None
    assert identity.signal(signal.SIGTERM) is True
    assert child.wait(timeout=10) == -signal.SIGTERM


def test_missing_pid_file_reads_as_none(tmp_path: Path) -> None:
    assert ProcessId.read(tmp_path / "absent.pid") is None


def test_a_process_without_a_pid_namespace_below_has_no_namespace_init() -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        assert namespace_init(child.pid) is None
    finally:
        child.kill()
        child.wait()
