"""Identify processes the testbed started, so it never signals anyone else's.

A pid alone is not an identity: after a crash the number can be reused by an unrelated process
(possibly another engineer's VM). Pairing the pid with its start time (clock ticks since boot,
field 22 of /proc/PID/stat) makes a pid file safe to act on long after it was written.
"""

from __future__ import annotations

import json
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path

from mlopsdeploy.testbed.files import write_atomically


@dataclass(frozen=True)
class ProcessId:
    """A process as (pid, start time); equal only to the very process that was recorded."""

    pid: int
    start: int

    @classmethod
    def of(cls, pid: int) -> ProcessId | None:
        """The identity of a live process, or None when there is no such (non-zombie) process."""
        stat = _read_stat(pid)
        if stat is None or stat[0] in ("Z", "X"):
            return None
        return cls(pid, int(stat[19]))

    @classmethod
    def current(cls) -> ProcessId:
        me = cls.of(os.getpid())
        assert me is not None, "the current process is always alive"
        return me

    def alive(self) -> bool:
        """True while this exact process runs (a zombie or a reused pid counts as gone)."""
        return ProcessId.of(self.pid) == self

    def signal(self, signum: signal.Signals) -> bool:
        """Send `signum` if this exact process is still alive; return whether it was sent."""
        if not self.alive():
            return False
        try:
            os.kill(self.pid, signum)
        except ProcessLookupError:
            return False
        return True

    def write(self, path: Path) -> None:
        write_atomically(path, json.dumps(self.to_json()))

    @classmethod
    def read(cls, path: Path) -> ProcessId | None:
        try:
            data = json.loads(path.read_text())
        except (FileNotFoundError, ValueError):
            return None
        return cls(int(data["pid"]), int(data["start"]))

    def to_json(self) -> dict[str, int]:
        return {"pid": self.pid, "start": self.start}


def _read_stat(pid: int) -> list[str] | None:
    """Fields of /proc/PID/stat after the command name (which may contain spaces and parens)."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return raw[raw.rindex(")") + 2 :].split()


def parent_of(pid: int) -> int | None:
    stat = _read_stat(pid)
    return int(stat[1]) if stat else None


def namespace_init(ancestor: int) -> ProcessId | None:
    """The PID 1 of a pid namespace started under `ancestor` (the container's init).

    systemd-nspawn forks its payload through an intermediate child, so init is a descendant,
    not necessarily a child. It is recognised by its NSpid line: host pid, then 1.
    """
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            parent = parent_of(int(entry.name))
            if parent is not None:
                children.setdefault(parent, []).append(int(entry.name))
    pending = list(children.get(ancestor, []))
    while pending:
        pid = pending.pop()
        if _namespace_pids(pid)[1:] == [1]:
            return ProcessId.of(pid)
        pending.extend(children.get(pid, []))
    return None


def _namespace_pids(pid: int) -> list[int]:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return []
    for line in status.splitlines():
        if line.startswith("NSpid:"):
            return [int(field) for field in line.split()[1:]]
    return []


def wait_gone(pids: list[ProcessId], timeout: float) -> bool:
    """Poll until none of `pids` is alive; False if some still are at the deadline."""
    deadline = time.monotonic() + timeout
    while any(pid.alive() for pid in pids):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True
