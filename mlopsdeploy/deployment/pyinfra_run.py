"""Running a deploy through pyinfra's Python API for one host, on the control machine.

pyinfra keeps only success and change per operation; this adds per-step seconds and turns a
failed connection or step into an error that names the host and the cause.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager, suppress
from pathlib import Path
from typing import Any

from pyinfra.api import BaseStateCallback, Config, Host, Inventory, State
from pyinfra.api.connect import connect_all, disconnect_all
from pyinfra.api.deploy import add_deploy
from pyinfra.api.exceptions import PyinfraError
from pyinfra.api.operations import run_ops
from pyinfra.connectors.sshuserclient.client import get_host_keys

from mlopsdeploy.config import HostConfig
from mlopsdeploy.deployment.control.host_lock import LOCK_WAIT_SECONDS, hold_lock
from mlopsdeploy.deployment.results import HostResult, StepResult
from mlopsdeploy.errors import AccessError, DeployError


class StepClock(BaseStateCallback):
    """Times every operation, since pyinfra itself records only success and change."""

    def __init__(self) -> None:
        self.started: dict[str, float] = {}
        self.seconds: dict[str, float] = {}

    # pyinfra declares these as staticmethods but calls them on the handler instance.
    def operation_host_start(self, *args: Any) -> None:  # type: ignore[override]
        self.started[args[2]] = time.monotonic()

    def _stop(self, op_hash: str) -> None:
        self.seconds[op_hash] = time.monotonic() - self.started.get(op_hash, time.monotonic())

    def operation_host_success(self, *args: Any) -> None:  # type: ignore[override]
        self._stop(args[2])

    def operation_host_error(self, *args: Any) -> None:  # type: ignore[override]
        self._stop(args[2])


@contextmanager
def timed(result: HostResult, phase: str) -> Iterator[None]:
    start = time.monotonic()
    try:
        yield
    finally:
        result.timings[phase] = round(time.monotonic() - start, 3)


@contextmanager
def pyinfra_logging(enabled: bool) -> Iterator[None]:
    logger = logging.getLogger("pyinfra")
    if not enabled:
        yield
        return
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger.addHandler(handler)
    previous = logger.level
    logger.setLevel(logging.INFO)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(previous)


DeployFactory = Callable[[Host], tuple[Callable[..., Any], tuple[Any, ...]]]


def ssh_data(cfg: HostConfig, key: Path) -> dict[str, Any]:
    """pyinfra host data for ``cfg``: only ``key``, only the project known_hosts, strict.

    No agent, no ~/.ssh keys or config: what logs in is exactly the key the access step chose.
    """
    return {
        "ssh_hostname": cfg.address,
        "ssh_port": cfg.ssh_port,
        "ssh_user": cfg.user,
        "ssh_key": str(key),
        "ssh_known_hosts_file": str(cfg.known_hosts),
        "ssh_strict_host_key_checking": "yes",
        "ssh_allow_agent": False,
        "ssh_look_for_keys": False,
        "ssh_config_file": os.devnull,
    }


def run_pyinfra(
    cfg: HostConfig,
    key: Path,
    result: HostResult,
    make: DeployFactory,
    lock_wait: int = LOCK_WAIT_SECONDS,
) -> None:
    """Connect with ``key``, take the host lock, add the deploy ``make`` returns, run it.

    ``make`` runs once connected, so control-side work that depends on the host (the wheelhouse
    for its Python) happens before any operation is planned. Fills ``result.steps``.
    """
    # pyinfra memoizes known_hosts files for the life of the process; the access step may just
    # have recorded a re-imaged VM's new key there (and a watchdog process lives for days).
    get_host_keys.cache.clear()
    # check_for_changes=False: operations read their facts once, when they run, instead of also
    # while being planned (halves a no-op run's round trips).
    inventory = Inventory(([(cfg.name, ssh_data(cfg, key))], {}))
    state = State(inventory, Config(CONNECT_TIMEOUT=10), check_for_changes=False)
    clock = StepClock()
    state.add_callback_handler(clock)
    with timed(result, "connect"), suppress(PyinfraError):
        connect_all(state)
    target = state.inventory.get_host(cfg.name)
    if target not in state.activated_hosts:
        raise AccessError(cfg.name, f"pyinfra could not connect to {cfg.address}:{cfg.ssh_port}")
    # The lock is held for as long as `held` is open, and given back before disconnecting.
    try:
        with ExitStack() as held:
            with timed(result, "lock"):
                held.enter_context(hold_lock(target, cfg, lock_wait))
            with timed(result, "prepare"):
                func, args = make(target)
            with timed(result, "plan"):
                add_deploy(state, func, *args)
            # A failing operation raises "No hosts remaining"; it is recorded below and explained
            # by the gate record when the gate refused.
            with timed(result, "ops"), suppress(PyinfraError):
                run_ops(state)
            for op_hash in state.get_op_order():
                op_data = state.ops[target].get(op_hash)
                if op_data is None:
                    continue
                meta = op_data.operation_meta
                done = meta.is_complete()
                result.steps.append(
                    StepResult(
                        name=", ".join(sorted(state.op_meta[op_hash].names)),
                        changed=done and meta.did_change(),
                        ok=done and meta.did_succeed(),
                        seconds=round(clock.seconds.get(op_hash, 0.0), 3),
                    )
                )
    finally:
        disconnect_all(state)
        # pyinfra's disconnect leaves the SSH client open until it is garbage-collected; a
        # watchdog that lives for days would pile up connections.
        target.connector.client.close()  # type: ignore[attr-defined]
    failed = [step.name for step in result.steps if not step.ok]
    if failed:
        raise DeployError(cfg.name, f"step failed: {failed[0]}")
