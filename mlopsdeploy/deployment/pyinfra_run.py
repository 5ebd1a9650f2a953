"""Running a deploy through pyinfra's Python API across hosts, on the control machine.

pyinfra keeps only success and change per operation; this adds per-step seconds and turns a
failed connection or step into an error that names the host and the cause.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from pyinfra.api import BaseStateCallback, Config, Host, Inventory, State
from pyinfra.api.connect import disconnect_all
from pyinfra.api.deploy import add_deploy
from pyinfra.api.exceptions import PyinfraError
from pyinfra.api.operations import run_host_op
from pyinfra.api.util import log_operation_start
from pyinfra.connectors.sshuserclient.client import get_host_keys
from pyinfra.context import ctx_host, ctx_state

from mlopsdeploy.config import HostConfig
from mlopsdeploy.deployment.control.host_lock import LOCK_WAIT_SECONDS, hold_lock
from mlopsdeploy.deployment.fact_prefetch import prefetched_facts
from mlopsdeploy.deployment.results import HostResult, StepResult
from mlopsdeploy.errors import AccessError, DeployError


class StepClock(BaseStateCallback):
    """Times every operation, since pyinfra itself records only success and change."""

    def __init__(self) -> None:
        self.started: dict[tuple[str, str], float] = {}
        self.seconds: dict[tuple[str, str], float] = {}

    # pyinfra declares these as staticmethods but calls them on the handler instance, with
    # (state, host, op_hash); several hosts run the same operation at once.
    def operation_host_start(self, *args: Any) -> None:  # type: ignore[override]
        self.started[(args[1].name, args[2])] = time.monotonic()

    def _stop(self, host: Host, op_hash: str) -> None:
        key = (host.name, op_hash)
        self.seconds[key] = time.monotonic() - self.started.get(key, time.monotonic())

    def operation_host_success(self, *args: Any) -> None:  # type: ignore[override]
        self._stop(args[1], args[2])

    def operation_host_error(self, *args: Any) -> None:  # type: ignore[override]
        self._stop(args[1], args[2])


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


@dataclass
class HostRun:
    """One host's part in a pyinfra run: who, with which key, what to deploy, where results go.

    ``error`` is this host's failure (connection, lock, control-side preparation, a step), set
    by ``run_hosts`` instead of raised, so one host's failure never stops the others.
    """

    cfg: HostConfig
    key: Path
    result: HostResult
    make: DeployFactory
    """Control-side preparation, then the deploy to plan; called in the caller's thread."""
    error: Exception | None = None


def run_pyinfra(
    cfg: HostConfig,
    key: Path,
    result: HostResult,
    make: DeployFactory,
    lock_wait: int = LOCK_WAIT_SECONDS,
) -> None:
    """One host's run (see ``run_hosts``); raises its error naming the host and the cause."""
    run = HostRun(cfg, key, result, make)
    run_hosts([run], lock_wait)
    if run.error is not None:
        raise run.error


def run_hosts(runs: Sequence[HostRun], lock_wait: int = LOCK_WAIT_SECONDS) -> None:
    """One pyinfra State for every host: connect, take each host lock, plan, run, record.

    Each ``make`` runs once every host is connected, locked and its facts read, so control-side
    work that depends on the host (the lock and wheelhouse for its Python) happens before any
    operation is planned. The ``make`` calls run in the caller's thread, one host after another:
    work that hosts share is then done once by whatever ``make`` caches, and no control-side
    parsing runs in a thread (packaging parses markers with ``ast``, and CPython 3.11.7's
    compiler is not thread-safe: "AST constructor recursion depth mismatch"). Hosts share every
    operation, which pyinfra runs across them at once. Fills ``result.steps`` and the phase
    timings of every run, and ``run.error`` for the hosts that failed.
    """
    # pyinfra memoizes known_hosts files for the life of the process; the access step may just
    # have recorded a re-imaged VM's new key there (and a watchdog process lives for days).
    get_host_keys.cache.clear()
    # check_for_changes=False: operations read their facts once, when they run, instead of also
    # while being planned (halves a no-op run's round trips).
    inventory = Inventory(([(run.cfg.name, ssh_data(run.cfg, run.key)) for run in runs], {}))
    state = State(inventory, Config(CONNECT_TIMEOUT=10), check_for_changes=False)
    clock = StepClock()
    state.add_callback_handler(clock)
    connect_start = time.monotonic()
    with suppress(PyinfraError):
        _connect_all(state)
    connected = round(time.monotonic() - connect_start, 3)
    targets = {run.cfg.name: state.inventory.get_host(run.cfg.name) for run in runs}
    for run in runs:
        run.result.timings["connect"] = connected
        if targets[run.cfg.name] not in state.activated_hosts:
            cfg = run.cfg
            run.error = AccessError(
                cfg.name, f"pyinfra could not connect to {cfg.address}:{cfg.ssh_port}"
            )
    # The locks are held for as long as `held` is open, and given back before disconnecting.
    try:
        with ExitStack() as held, ctx_state.use(state):
            # Locks, facts and planning are round trips one after another: the hosts do theirs
            # side by side. Preparation is control-side work, done here host after host.
            _each_host(
                partial(_open_host, targets=targets, held=held, lock_wait=lock_wait),
                [run for run in runs if run.error is None],
            )
            deploys = {
                run.cfg.name: deploy
                for run in runs
                if run.error is None and (deploy := _prepare_host(run, targets)) is not None
            }
            _each_host(
                partial(_plan_host, state, targets=targets, deploys=deploys),
                [run for run in runs if run.error is None],
            )
            planned = [run for run in runs if run.error is None]
            state.active_hosts = {targets[run.cfg.name] for run in planned}
            ops_start = time.monotonic()
            raised = _run_ops(state, [targets[run.cfg.name] for run in planned])
            ops_seconds = round(time.monotonic() - ops_start, 3)
            for run in planned:
                run.result.timings["ops"] = ops_seconds
                run.error = raised.get(run.cfg.name)
                if run.error is None:
                    _record_steps(state, clock, run, targets[run.cfg.name])
    finally:
        disconnect_all(state)
        # pyinfra's disconnect leaves the SSH client open until it is garbage-collected; a
        # watchdog that lives for days would pile up connections.
        for target in targets.values():
            client = getattr(target.connector, "client", None)
            if client is not None:
                client.close()


def _connect_all(state: State) -> None:
    """pyinfra's ``connect_all``, with the hosts' SSH handshakes side by side in threads.

    ``connect_all`` spawns a greenlet per host, and greenlets interleave only in a process gevent
    has monkey-patched: here each handshake waited for the one before. A host that does not
    connect is failed, as there (``fail_hosts`` raises past pyinfra's FAIL_PERCENT, if set).
    """
    hosts = list(state.inventory)
    if len(hosts) == 1:
        hosts[0].connect()
    elif hosts:
        with ThreadPoolExecutor(max_workers=len(hosts)) as pool:
            list(pool.map(lambda host: host.connect(), hosts))
    for host in hosts:
        if host.connected:
            state.activate_host(host)
    failed = {host for host in hosts if not host.connected}
    state.fail_hosts(failed, activated_count=len(hosts))


def _each_host(step: Callable[[HostRun], None], runs: Sequence[HostRun]) -> None:
    """``step`` on every run at once, one thread each; a single run stays in this thread.

    All of a run's hosts plan on the same kind of thread, since pyinfra names an operation by
    its call stack's line numbers.
    """
    if len(runs) == 1:
        step(runs[0])
    elif runs:
        with ThreadPoolExecutor(max_workers=len(runs)) as pool:
            list(pool.map(step, runs))


def _open_host(run: HostRun, targets: dict[str, Host], held: ExitStack, lock_wait: int) -> None:
    """Take one host's lock and read its facts; a failure is recorded as this host's error."""
    target = targets[run.cfg.name]
    try:
        with timed(run.result, "lock"):
            held.enter_context(hold_lock(target, run.cfg, lock_wait))
        with timed(run.result, "facts"):
            # With the lock held nobody else changes the host: its facts can be read at once.
            held.enter_context(prefetched_facts(target, run.cfg, run.key))
    except Exception as e:  # any failure here is this host's, reported on it
        run.error = e


def _prepare_host(
    run: HostRun, targets: dict[str, Host]
) -> tuple[Callable[..., Any], tuple[Any, ...]] | None:
    """The host's deploy from its ``make`` (control side); a failure is this host's error."""
    try:
        with timed(run.result, "prepare"):
            return run.make(targets[run.cfg.name])
    except Exception as e:  # any failure here is this host's, reported on it
        run.error = e
        return None


def _plan_host(
    state: State,
    run: HostRun,
    targets: dict[str, Host],
    deploys: dict[str, tuple[Callable[..., Any], tuple[Any, ...]]],
) -> None:
    """Plan one host's prepared deploy; a failure is recorded as this host's error."""
    func, args = deploys[run.cfg.name]
    try:
        with timed(run.result, "plan"):
            add_deploy(state, func, *args, host=targets[run.cfg.name])
    except Exception as e:  # any failure here is this host's, reported on it
        run.error = e


def _run_ops(state: State, hosts: Sequence[Host]) -> dict[str, Exception]:
    """Run every operation across ``hosts``, in order, each one on all hosts at once.

    pyinfra's own runner does this with greenlets, which run side by side only in a process
    gevent has monkey-patched (as the pyinfra CLI does); a library must not patch its caller's
    process, so the hosts of an operation run in threads here. A host whose operation fails
    drops out of the later ones, as in pyinfra; an exception is kept as that host's error.
    """
    raised: dict[str, Exception] = {}
    if not hosts:
        return raised

    def one(target: Host, op_hash: str) -> bool:
        try:
            with ctx_state.use(state), ctx_host.use(target):
                return run_host_op(state, target, op_hash)
        except PyinfraError:  # pyinfra's own verdict: the step shows it failed
            return False
        except Exception as e:  # e.g. a gate's DeployError: this host's error
            raised[target.name] = e
            return False

    with ThreadPoolExecutor(max_workers=len(hosts)) as pool, ctx_state.use(state):
        state.is_executing = True
        for op_hash in state.get_op_order():
            active = [h for h in hosts if h in state.active_hosts]
            if not active:
                break
            state.trigger_callbacks("operation_start", op_hash)
            log_operation_start(state.get_op_meta(op_hash))
            if len(active) == 1:  # one host: no thread, exactly pyinfra's own path
                outcomes = [one(active[0], op_hash)]
            else:
                outcomes = list(pool.map(one, active, [op_hash] * len(active)))
            state.active_hosts -= {h for h, ok in zip(active, outcomes, strict=True) if not ok}
            state.failed_hosts.update(h for h, ok in zip(active, outcomes, strict=True) if not ok)
            state.trigger_callbacks("operation_end", op_hash)
    return raised


def _record_steps(state: State, clock: StepClock, run: HostRun, target: Host) -> None:
    """The host's operations as StepResults; a failed step becomes the host's error."""
    for op_hash in state.get_op_order():
        op_data = state.ops[target].get(op_hash)
        if op_data is None:
            continue
        meta = op_data.operation_meta
        done = meta.is_complete()
        run.result.steps.append(
            StepResult(
                name=", ".join(sorted(state.op_meta[op_hash].names)),
                changed=done and meta.did_change(),
                ok=done and meta.did_succeed(),
                seconds=round(clock.seconds.get((target.name, op_hash), 0.0), 3),
            )
        )
    failed = [step.name for step in run.result.steps if not step.ok]
    if failed:
        run.error = DeployError(run.cfg.name, f"step failed: {failed[0]}")
