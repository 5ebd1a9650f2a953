"""Guests for fault tests: one that records commands, one that really runs them here.

The local guest runs a fault's shell on this machine, with a fake `systemctl` first on PATH that
reports a process the test itself started as the unit's MainPID — so signals reach only that
process, and the test can watch what they did to it.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from mlopsdeploy.faults import AppPaths, CommandFailed, Service, Target


@dataclass
class FakeGuest:
    """Records commands; `answers` maps a command substring to its output or a failure code."""

    answers: dict[str, str | int] = field(default_factory=dict)
    commands: list[str] = field(default_factory=list)

    def sh(self, command: str) -> str:
        self.commands.append(command)
        for fragment, answer in self.answers.items():
            if fragment in command:
                if isinstance(answer, int):
                    raise CommandFailed(command, answer, "")
                return answer
        return ""


class LocalGuest:
    """Runs commands with `sh` on this machine, with extra environment."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = {**os.environ, **env}

    def sh(self, command: str) -> str:
        result = subprocess.run(
            ["sh", "-c", command], capture_output=True, text=True, env=self.env, timeout=30
        )
        if result.returncode != 0:
            raise CommandFailed(command, result.returncode, result.stderr)
        return result.stdout


MakeTarget = Callable[..., Target]


@pytest.fixture
def guest() -> FakeGuest:
    return FakeGuest()


@pytest.fixture
def make_target() -> MakeTarget:
    """`make_target(guest, machine=..., api=...)`: the deploy's layout on host "vm1"."""

    def make(guest: object, **parts: object) -> Target:
        return Target(
            name="vm1",
            guest=guest,  # type: ignore[arg-type]
            service=Service("mlopsdeploy.service", 8000),
            paths=AppPaths("/home/u/mlopsdeploy", "/home/u/mlopsdeploy/venv", "/m"),
            **parts,  # type: ignore[arg-type]
        )

    return make


@pytest.fixture
def app_process() -> Iterator[subprocess.Popen[bytes]]:
    """A process of our own standing in for the app (killed at teardown if still there)."""
    process = subprocess.Popen(["sleep", "60"])
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()


@pytest.fixture
def local_guest(tmp_path: Path) -> Callable[[int], LocalGuest]:
    """`local_guest(pid)`: a LocalGuest whose fake systemctl says MainPID=pid."""

    def make(pid: int) -> LocalGuest:
        bin_dir = tmp_path / "bin"
        bin_dir.mkdir(exist_ok=True)
        fake = bin_dir / "systemctl"
        fake.write_text(f'#!/bin/sh\n[ "$2" = show ] && echo {pid}\n')
        fake.chmod(0o755)
        return LocalGuest({"PATH": f"{bin_dir}:{os.environ['PATH']}"})

    return make
