"""The gate with per-lock venvs: the candidate runs on the new venv, a failed switch goes back."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import paramiko
import pytest

from mlopsdeploy.config import HostConfig
from mlopsdeploy.deployment.control.bundle import ReleaseBundle
from mlopsdeploy.deployment.control.probe import ProbeResult
from mlopsdeploy.deployment.facts.release import ReleaseIndex, Releases
from mlopsdeploy.deployment.operations import gate as gate_ops
from mlopsdeploy.deployment.operations.gate import (
    Gate,
    GateRecord,
    candidate_gated,
    check_candidate,
    check_serving,
)
from mlopsdeploy.deployment.operations.service import render_unit

BASE = "/home/student-admin/mlopsdeploy"
OLD, NEW = "0" * 16, "1" * 16


@pytest.fixture
def cfg() -> HostConfig:
    return HostConfig(name="vm", address="10.0.0.2", own_key=Path("/k"))


def gate(cfg: HostConfig, release: str = "r-new", **fields: Any) -> Gate:
    bundle = ReleaseBundle(id=release, files={}, model_version="m")
    return Gate(cfg, bundle, 1.0, GateRecord(), **fields)


def test_candidate_runs_the_release_on_the_new_lock_venv(run_op, cfg) -> None:
    commands = run_op(candidate_gated, {}, gate=gate(cfg, venv=NEW))
    links = [c for c in commands if isinstance(c, str)]
    assert links[0].endswith(f"mv -T {BASE}/.candidate.new {BASE}/candidate")
    assert links[1] == (
        f"ln -sfn venvs/{NEW} {BASE}/.candidate-venv.new && "
        f"mv -T {BASE}/.candidate-venv.new {BASE}/candidate-venv"
    )
    assert links[2].endswith("restart mlopsdeploy-candidate.service")
    # ...which is the venv the candidate unit starts, while the serving units keep ``venv``.
    assert f"ExecStart={BASE}/candidate-venv/bin/python -m app" in render_unit(cfg, "candidate")
    assert f"ExecStart={BASE}/venv/bin/python -m app" in render_unit(cfg, "main")


class Host:
    """A host whose roll onto the new venv failed at its first worker."""

    def __init__(self, index: ReleaseIndex) -> None:
        self.index = index
        self.commands: list[str] = []

    def get_fact(self, cls: type, **kwargs: Any) -> ReleaseIndex:
        assert cls is Releases
        return self.index

    def run_shell_command(self, command: str) -> tuple[bool, None]:
        self.commands.append(command)
        return True, None

    def log_styled(self, *args: Any, **kwargs: Any) -> None:
        pass


def failed_roll(g: Gate) -> Gate:
    g.record.rollout.failed = "mlopsdeploy@1.service"
    return g


def test_failed_switch_to_a_new_venv_alone_goes_back_to_the_old_venv(cfg) -> None:
    host = Host(ReleaseIndex(current="r-new", previous="r-old", ids=["r-old", "r-new"]))
    g = failed_roll(gate(cfg, venv=NEW, restore_venv=OLD, new_release=False))
    assert check_serving(None, host, g) is False  # type: ignore[arg-type]
    back, restart = host.commands
    assert back == f"ln -sfn venvs/{OLD} {BASE}/.venv.new && mv -T {BASE}/.venv.new {BASE}/venv"
    assert restart.endswith("restart mlopsdeploy@1.service")
    # The release did not change in this run, so it is not the one put back.
    assert not any("current" in c for c in host.commands)
    assert g.record.failure is not None
    assert str(g.record.failure).endswith(f"the app went back to the venv of lock {OLD}")


def test_failed_new_release_on_a_new_venv_goes_back_to_both(cfg) -> None:
    host = Host(ReleaseIndex(current="r-new", previous="r-old", ids=["r-old", "r-new"]))
    g = failed_roll(gate(cfg, venv=NEW, restore_venv=OLD))
    check_serving(None, host, g)  # type: ignore[arg-type]
    switch, restart = host.commands
    assert switch.startswith(f"ln -sfn venvs/{OLD} {BASE}/.venv.new && ")
    assert switch.endswith(
        f"ln -sfn releases/r-old {BASE}/.current.new && mv -T {BASE}/.current.new {BASE}/current"
    )
    assert restart.endswith("restart mlopsdeploy@1.service")
    assert "switched back to release r-old" in str(g.record.failure)


class LostSession:
    """A host whose SSH session died while its candidate was being probed."""

    connector = SimpleNamespace(client=SimpleNamespace(get_transport=lambda: None))

    def run_shell_command(self, command: str) -> tuple[bool, None]:
        raise paramiko.SSHException("SSH session not active")

    def log_styled(self, *args: Any, **kwargs: Any) -> None:
        pass


def test_refusal_reaches_the_user_when_the_session_died_before_the_journal(
    cfg, monkeypatch: pytest.MonkeyPatch
) -> None:
    wrong = "check 'happy sentence' (/predict): label POSITIVE, expected NEGATIVE"
    monkeypatch.setattr(gate_ops, "wait_healthy", lambda *a, **k: ProbeResult(False, wrong, 3.0))
    g = gate(cfg, venv=NEW)
    assert check_candidate(None, LostSession(), g) is False  # type: ignore[arg-type]
    message = str(g.record.failure)
    assert "release r-new (model m) refused by the health gate: " + wrong in message
    assert "(journal not read: SSHException: SSH session not active)" in message
    assert "(mlopsdeploy-candidate.service not stopped: SSHException: " in message
