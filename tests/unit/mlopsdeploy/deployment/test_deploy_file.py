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
from mlopsdeploy.deployment.control import haproxy
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


def test_an_app_host_behind_the_lb_passes_once_haproxy_has_it_up(run_op, monkeypatch) -> None:
    """As the rollout's after_batch: deployed and serving is not enough, users reach it via
    HAProxy, so the check waits for HAProxy's own health check to take it in."""
    balancer = HostConfig(name="lb", address="10.0.0.1", own_key=Path("/k"), groups=("lb",))
    monkeypatch.setattr(deploy_file, "verify_served", lambda *_: None)
    asked: list[tuple[str, str, bool, bool]] = []

    def wait_for(lb: HostConfig, server: str, wanted, timeout: float, what: str) -> None:
        up = haproxy.ServerState(server, "UP", 0, 1, "L7OK")
        down = haproxy.ServerState(server, "DOWN", 0, 0, "L4CON")
        asked.append((lb.name, server, wanted(up), wanted(down)))

    monkeypatch.setattr(haproxy, "wait_for", wait_for)
    with ctx_state.use(SimpleNamespace(current_stage=StateStage.Execute)):
        commands = run_op(
            deploy_file.serving_checked,
            {},
            cfg=CFG,
            canaries=DEFAULT_CANARIES,
            timeout=1.0,
            balancer=balancer,
        )
    assert commands == [] and asked == [("lb", "vm", True, False)]


def test_the_cli_says_when_it_cannot_run_the_configured_batches() -> None:
    hosts = [HostConfig(name=n, address=n, own_key=Path("/k")) for n in ("a", "b", "c")]
    note = deploy_file.rollout_note(hosts, (1, "100%"))
    assert note is not None and "[1, '100%'] are not applied here" in note
    assert "`mlopsdeploy deploy` runs the rolling release" in note
    assert deploy_file.rollout_note(hosts, ()) is None  # one batch: exactly what the CLI runs
    assert deploy_file.rollout_note(hosts, ("100%",)) is None
