"""The pyinfra CLI path's final check: the library's own check, a failure only when it fails."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
from pyinfra.api import FunctionCommand
from pyinfra.api.state import StateStage
from pyinfra.context import ctx_state

from mlopsdeploy.config import HostConfig
from mlopsdeploy.deployment import deploy_file
from mlopsdeploy.deployment.control.probe import DEFAULT_CANARIES
from mlopsdeploy.errors import DeployError

CFG = HostConfig(name="vm", address="10.0.0.2", own_key=Path("/k"))


def check(run_op, stage: StateStage) -> list:
    with ctx_state.use(SimpleNamespace(current_stage=stage)):
        return run_op(
            deploy_file.serving_checked, {}, cfg=CFG, canaries=DEFAULT_CANARIES, timeout=1.0
        )


def test_a_passing_check_is_no_change(run_op, monkeypatch: pytest.MonkeyPatch) -> None:
    checked: list[str] = []
    monkeypatch.setattr(deploy_file, "verify_served", lambda cfg, *_: checked.append(cfg.name))
    assert check(run_op, StateStage.Execute) == []
    assert checked == ["vm"]


def test_a_failing_check_fails_the_host_with_its_cause(run_op, monkeypatch) -> None:
    def refuse(cfg: HostConfig, *_: object) -> None:
        raise DeployError(cfg.name, "http://10.0.0.2:8000 is not healthy afterwards: 503")

    monkeypatch.setattr(deploy_file, "verify_served", refuse)
    (command,) = check(run_op, StateStage.Execute)
    assert isinstance(command, FunctionCommand)
    logged: list[str] = []
    host = SimpleNamespace(log_styled=lambda text, **_: logged.append(text))
    assert command.function(None, host, *command.args) is False
    assert logged == ["vm: http://10.0.0.2:8000 is not healthy afterwards: 503"]


def test_nothing_is_checked_while_pyinfra_plans(run_op, monkeypatch) -> None:
    monkeypatch.setattr(deploy_file, "verify_served", lambda *_: pytest.fail("checked early"))
    assert check(run_op, StateStage.Prepare) == []
