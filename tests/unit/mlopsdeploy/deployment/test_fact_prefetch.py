"""Facts read in one batch are the facts pyinfra would read, until the run changes the host.

The "host" here runs commands with the local `sh`, as pyinfra's SSH connector runs them on a
VM, and counts the commands it was sent: one batch instead of one command per fact.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from mlopsdeploy.config import HostConfig
from mlopsdeploy.deployment import fact_prefetch
from mlopsdeploy.deployment.facts.release import Releases
from mlopsdeploy.deployment.facts.runtime import LockStamp
from mlopsdeploy.deployment.facts.service import FileDigest

KEY = Path("/keys/own")
CFG = HostConfig(name="vm", address="10.0.0.2", own_key=KEY)


class ShellHost:
    """Enough of a pyinfra Host: get_fact, run_shell_command and put_file on this machine."""

    def __init__(self) -> None:
        self.sent: list[str] = []
        self.current_op_global_arguments: dict[str, Any] | None = None
        self.state = SimpleNamespace(config=SimpleNamespace(SHELL="sh"))

    def run_shell_command(self, command: Any) -> tuple[bool, Any]:
        text = command.get_raw_value() if hasattr(command, "get_raw_value") else str(command)
        self.sent.append(text)
        done = subprocess.run(["sh", "-c", text], capture_output=True, text=True)
        lines = done.stdout.split("\n")
        if lines[-1] == "":
            lines.pop()
        return done.returncode == 0, SimpleNamespace(stdout_lines=lines)

    def put_file(self, *args: Any) -> bool:
        return True

    def get_fact(self, cls: type, **kwargs: Any) -> Any:
        """pyinfra's own path: the fact's command, its output processed (or the default)."""
        fact = cls()
        ok, output = self.run_shell_command(fact.command(**kwargs))
        return fact.process(output.stdout_lines) if ok and output.stdout_lines else fact.default()


@pytest.fixture
def deploy_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("MLOPSDEPLOY_STATE_DIR", str(tmp_path / "state"))
    root = tmp_path / "root"
    (root / "releases" / "r-0123456789ab").mkdir(parents=True)
    (root / "releases" / "r-0123456789ab" / ".complete").touch()
    (root / "current").symlink_to(root / "releases" / "r-0123456789ab")
    (root / "venv").mkdir()
    (root / "venv" / "mlopsdeploy-lock.sha256").write_text("abc123\n")
    (root / "app.env").write_text("A=1\n")
    return root


def ask(host: ShellHost, root: Path) -> list[Any]:
    """What a deploy asks, the way its operations ask it."""
    return [
        host.get_fact(Releases, base=str(root)),
        host.get_fact(LockStamp, path=str(root / "venv")),
        host.get_fact(LockStamp, path=str(root / "wheelhouse")),
        host.get_fact(FileDigest, path=str(root / "app.env")),
    ]


def test_the_second_run_reads_every_fact_in_one_command_with_the_same_answers(
    deploy_root: Path,
) -> None:
    first = ShellHost()
    with fact_prefetch.prefetched_facts(first, CFG, KEY):  # type: ignore[arg-type]
        live = ask(first, deploy_root)
    assert len(first.sent) == 4  # nothing recorded yet: one command per fact

    second = ShellHost()
    with fact_prefetch.prefetched_facts(second, CFG, KEY):  # type: ignore[arg-type]
        batched = ask(second, deploy_root)
    assert batched == live
    assert live[0].current == "r-0123456789ab" and live[1] == "abc123" and live[2] is None
    assert len(second.sent) == 1


def test_after_the_run_changes_the_host_facts_are_read_live(deploy_root: Path) -> None:
    with fact_prefetch.prefetched_facts(ShellHost(), CFG, KEY):  # type: ignore[arg-type]
        ask(ShellHost(), deploy_root)  # a plain host: records nothing
    host = ShellHost()
    with fact_prefetch.prefetched_facts(host, CFG, KEY):  # type: ignore[arg-type]
        ask(host, deploy_root)  # recorded for the next run
    host = ShellHost()
    with fact_prefetch.prefetched_facts(host, CFG, KEY):  # type: ignore[arg-type]
        assert host.get_fact(LockStamp, path=str(deploy_root / "venv")) == "abc123"
        host.run_shell_command(f"echo def456 > {deploy_root}/venv/mlopsdeploy-lock.sha256")
        assert host.get_fact(LockStamp, path=str(deploy_root / "venv")) == "def456"


def test_a_fact_asked_with_sudo_is_read_live(deploy_root: Path) -> None:
    for _ in range(2):
        host = ShellHost()
        with fact_prefetch.prefetched_facts(host, CFG, KEY):  # type: ignore[arg-type]
            ask(host, deploy_root)
    host.current_op_global_arguments = {"_sudo": True}
    with fact_prefetch.prefetched_facts(host, CFG, KEY):  # type: ignore[arg-type]
        sent = len(host.sent)
        host.get_fact(LockStamp, path=str(deploy_root / "venv"))
        assert len(host.sent) == sent + 1


def test_outputs_come_back_byte_for_byte_with_their_status() -> None:
    commands = ["printf 'a\\nb'", "exit 3", "echo x; echo", "true", "echo '@@mlopsdeploy-fact 0 0'"]
    done = subprocess.run(
        ["sh", "-c", fact_prefetch.batch_script(commands)], capture_output=True, text=True
    )
    answers = fact_prefetch.parse_batch(done.stdout.split("\n"), len(commands))
    assert answers == {
        0: (True, ["a", "b"]),
        1: (False, []),
        2: (True, ["x", ""]),
        3: (True, []),
        4: (True, ["@@mlopsdeploy-fact 0 0"]),
    }
