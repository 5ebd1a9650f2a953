"""One pyinfra run across hosts: round trips side by side, control-side preparation in the
caller's thread (where work shared by hosts is done once and nothing parses in threads)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from pyinfra.api import Config, Host, Inventory, State

from mlopsdeploy.config import HostConfig
from mlopsdeploy.deployment import pyinfra_run
from mlopsdeploy.deployment.pyinfra_run import HostRun, run_hosts
from mlopsdeploy.deployment.results import HostResult
from mlopsdeploy.errors import DeployError


def _on_main() -> bool:
    return threading.current_thread() is threading.main_thread()


def test_hosts_prepare_in_the_callers_thread_and_plan_side_by_side(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen: dict[str, list[tuple[str, bool]]] = {}

    def connect_all(state: Any) -> None:
        state.activated_hosts.update(state.inventory)

    @contextmanager
    def step(kind: str, target: Any, *args: Any) -> Iterator[None]:
        seen.setdefault(target.name, []).append((kind, _on_main()))
        yield

    def make(target: Any) -> tuple[Any, tuple[Any, ...]]:
        seen[target.name].append(("prepare", _on_main()))
        if target.name == "bad":
            raise DeployError("bad", "python3 is not installed on the host")
        return print, ()

    def add_deploy(state: Any, func: Any, *args: Any, host: Any) -> None:
        seen[host.name].append(("plan", _on_main()))

    monkeypatch.setattr(pyinfra_run, "_connect_all", connect_all)
    monkeypatch.setattr(pyinfra_run, "disconnect_all", lambda state: None)
    monkeypatch.setattr(pyinfra_run, "hold_lock", lambda *args: step("lock", *args))
    monkeypatch.setattr(pyinfra_run, "prefetched_facts", lambda *args: step("facts", *args))
    monkeypatch.setattr(pyinfra_run, "add_deploy", add_deploy)
    monkeypatch.setattr(pyinfra_run, "_run_ops", lambda state, hosts: {})
    runs = [
        HostRun(
            HostConfig(name=name, address=name, own_key=Path("/k")),
            Path("/k"),
            HostResult(name, ""),
            make,
        )
        for name in ("a", "bad", "c")
    ]
    run_hosts(runs)
    side_by_side = [("lock", False), ("facts", False)]
    assert seen["a"] == seen["c"] == [*side_by_side, ("prepare", True), ("plan", False)]
    assert seen["bad"] == [*side_by_side, ("prepare", True)]  # failed: never planned
    assert [str(run.error) if run.error else None for run in runs] == [
        None,
        "bad: python3 is not installed on the host",
        None,
    ]


def test_hosts_connect_side_by_side(monkeypatch: pytest.MonkeyPatch) -> None:
    """pyinfra's connect_all runs one handshake after another outside a gevent-patched
    process; here every host must be in its handshake at once for any of them to finish."""
    together = threading.Barrier(3, timeout=10)

    def connect(host: Host, *args: Any, **kwargs: Any) -> None:
        together.wait()  # broken, raising, unless all three hosts got here side by side
        host.connected = host.name != "down"

    monkeypatch.setattr(Host, "connect", connect)
    state = State(Inventory((["a", "down", "c"], {})), Config())
    pyinfra_run._connect_all(state)
    assert {host.name for host in state.activated_hosts} == {"a", "c"}
    assert {host.name for host in state.failed_hosts} == {"down"}
