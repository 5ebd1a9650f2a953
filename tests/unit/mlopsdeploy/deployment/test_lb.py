"""The LB in a rollout: which hosts are app hosts, and draining around each batch."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlopsdeploy.config import ConfigError, HostConfig, load_file
from mlopsdeploy.deployment import lb
from mlopsdeploy.deployment.control import haproxy
from mlopsdeploy.deployment.control.haproxy import ServerState
from mlopsdeploy.deployment.results import HostResult
from mlopsdeploy.errors import DeployError

HOSTS_TOML = """
[defaults]
own_key = "/k"

[hosts.web1]
address = "10.0.0.1"

[hosts.web2]
address = "10.0.0.2"

[hosts.front]
address = "10.0.0.9"
app_port = 80
groups = ["lb"]
"""


@pytest.fixture
def inventory(tmp_path: Path) -> list[HostConfig]:
    path = tmp_path / "hosts.toml"
    path.write_text(HOSTS_TOML)
    return load_file(path)


class FakeHAProxy:
    """The runtime API of one HAProxy: states change as commands arrive; the health check
    brings a server ready again UP after ``checks_to_up`` reads."""

    def __init__(self, names: list[str]) -> None:
        self.state = {n: ServerState(n, "UP", 0, 0, "L7OK") for n in names}
        self.commands: list[str] = []
        self.sessions_after_drain = 0
        self.checks_to_up = 1

    def __call__(self, cfg: HostConfig, command: str) -> str:
        self.commands.append(command)
        if command.startswith("set server app/"):
            name, _, state = command.removeprefix("set server app/").split()
            status = {"drain": "DRAIN", "ready": "DOWN"}[state]
            sessions = self.sessions_after_drain if state == "drain" else 0
            self.state[name] = ServerState(name, status, sessions, 0, "L7OK")
            return "\n"
        return "# pxname,svname,scur,stot,status,check_status\n" + "".join(
            f"app,{s.name},{self._session(s)},0,{self._status(s)},{s.check}\n"
            for s in self.state.values()
        )

    def _session(self, s: ServerState) -> int:
        if s.sessions:
            self.state[s.name] = ServerState(s.name, s.status, s.sessions - 1, 0, s.check)
        return s.sessions

    def _status(self, s: ServerState) -> str:
        if s.status == "DOWN":
            self.checks_to_up -= 1
            if self.checks_to_up < 0:
                self.state[s.name] = ServerState(s.name, "UP", 0, 0, s.check)
        return s.status


@pytest.fixture
def fake(monkeypatch, inventory) -> FakeHAProxy:
    api = FakeHAProxy(["web1", "web2"])
    monkeypatch.setattr(haproxy, "runtime_command", api)
    return api


def deployed_hooks(inventory: list[HostConfig], ok: bool = True) -> lb.HAProxyHooks:
    hooks = lb.hooks_for(inventory)
    assert hooks is not None
    result = HostResult("front", "http://10.0.0.9:80", ok=ok)
    if not ok:
        result.error = DeployError("front", "HAProxy config: step failed")
    hooks.results = [result]
    return hooks


def test_lb_group_hosts_never_get_the_app(inventory) -> None:
    app, lbs = lb.split_inventory(inventory)
    assert [c.name for c in app] == ["web1", "web2"]
    assert [c.name for c in lbs] == ["front"]
    assert lbs[0].groups == ("lb",)
    hooks = lb.hooks_for(inventory)
    assert hooks is not None and hooks.lb.name == "front"
    assert [c.name for c in hooks.app_hosts] == ["web1", "web2"]


def test_no_lb_group_means_no_hooks_and_two_are_refused(inventory) -> None:
    assert lb.hooks_for(inventory[:2]) is None
    with pytest.raises(ConfigError, match="one load balancer host is supported"):
        lb.hooks_for([*inventory, inventory[2]])


def test_batch_is_drained_until_idle_then_back_up(fake, inventory) -> None:
    hooks = deployed_hooks(inventory)
    fake.sessions_after_drain = 2
    batch = [inventory[0]]
    hooks.before_batch(batch)
    assert fake.commands[:2] == ["show stat", "set server app/web1 state drain"]
    assert fake.state["web1"].status == "DRAIN" and fake.state["web1"].sessions == 0
    assert fake.state["web2"].status == "UP"
    hooks.after_batch(batch, [HostResult("web1", "u", ok=True)])
    assert "set server app/web1 state ready" in fake.commands
    assert fake.state["web1"].status == "UP"  # waited for HAProxy's own check


def test_a_batch_of_every_up_host_is_not_drained(fake, inventory) -> None:
    hooks = deployed_hooks(inventory)
    fake.state["web2"] = ServerState("web2", "DOWN", 0, 0, "L4CON")
    hooks.before_batch([inventory[0]])  # web2 could not take web1's requests
    assert fake.commands == ["show stat"]
    assert fake.state["web1"].status == "UP"


def test_a_failed_host_goes_back_without_waiting_for_it(fake, inventory) -> None:
    hooks = deployed_hooks(inventory)
    fake.checks_to_up = 10**6  # never comes up
    hooks.after_batch([inventory[1]], [HostResult("web2", "u", ok=False)])
    assert fake.commands == ["set server app/web2 state ready"]


def test_nothing_is_drained_through_an_lb_that_failed_to_deploy(fake, inventory) -> None:
    hooks = deployed_hooks(inventory, ok=False)
    with pytest.raises(DeployError, match="cannot drain hosts in the load balancer"):
        hooks.before_batch([inventory[0]])
    assert fake.commands == []


def test_lb_view_gives_each_app_host_state(fake, inventory) -> None:
    fake.state.pop("web2")
    assert lb.lb_view(inventory) == {"web1": "UP", "web2": "not in LB"}
    assert lb.lb_view(inventory[:2]) == {}


def test_lb_view_says_when_the_lb_cannot_be_asked(monkeypatch, inventory) -> None:
    def unreachable(cfg: HostConfig, command: str) -> str:
        raise DeployError("front", "cannot reach HAProxy's runtime API")

    monkeypatch.setattr(haproxy, "runtime_command", unreachable)
    assert lb.lb_view(inventory) == {"web1": "LB unreachable", "web2": "LB unreachable"}
