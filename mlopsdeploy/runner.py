"""Run the deploy through pyinfra's Python API, one host at a time, and report what happened.

This is what ``mlopsdeploy.deploy()`` / ``rollback()`` (and the CLI, the resilience suite and the
watchdog) call. Each host gets its own pyinfra State so one host's failure is reported as that
host's, with its cause, and never stops or half-applies another host.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from pyinfra.api import BaseStateCallback, Config, Host, Inventory, State
from pyinfra.api.connect import connect_all, disconnect_all
from pyinfra.api.deploy import add_deploy
from pyinfra.api.exceptions import PyinfraError
from pyinfra.api.operations import run_ops
from pyinfra.connectors.sshuserclient.client import get_host_keys

from mlopsdeploy import plan as plans
from mlopsdeploy.config import HostConfig, state_dir
from mlopsdeploy.errors import AccessError, DeployError
from mlopsdeploy.facts.runtime import TargetPython
from mlopsdeploy.gate import GateRecord
from mlopsdeploy.health import DEFAULT_CANARIES, Canary, wait_healthy
from mlopsdeploy.release import ReleaseBundle, build_release
from mlopsdeploy.ssh_access import check_host_key, choose_login_key, key_logs_in, verify_lockdown
from mlopsdeploy.wheelhouse import build_wheelhouse, fetch_installer, pinned_requirements

REPO_ROOT = Path(__file__).resolve().parent.parent


def _default_model_dir() -> Path:
    return Path(os.environ.get("MLOPSDEPLOY_MODEL_DIR", REPO_ROOT / "build" / "model"))


@dataclass(frozen=True)
class DeployOptions:
    """Settings shared by every host of one deploy.

    + accept_new_host_key: trust a changed SSH host key (the VM was re-imaged) and record it
    + gate_timeout: seconds a new release gets to answer /readyz and the canaries correctly
    + output: print pyinfra's per-operation log (what ``pyinfra`` itself would print)
    """

    model_dir: Path = field(default_factory=_default_model_dir)
    app_dir: Path = REPO_ROOT / "app"
    cache_dir: Path = field(default_factory=lambda: state_dir() / "cache")
    accept_new_host_key: bool = False
    gate_timeout: float = 120.0
    output: bool = False


@dataclass
class StepResult:
    """One pyinfra operation on one host: did it change anything, how long it took."""

    name: str
    changed: bool
    ok: bool
    seconds: float


@dataclass
class HostResult:
    host: str
    url: str
    ok: bool = False
    release: str | None = None
    model_version: str | None = None
    steps: list[StepResult] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    error: DeployError | None = None

    @property
    def changed(self) -> list[str]:
        """Names of the steps that changed something (empty: the host was already right)."""
        return [step.name for step in self.steps if step.changed]


@dataclass
class DeployResult:
    hosts: list[HostResult]

    @property
    def ok(self) -> bool:
        return all(h.ok for h in self.hosts)

    @property
    def changed(self) -> bool:
        return any(h.changed for h in self.hosts)

    def raise_for_errors(self) -> None:
        for result in self.hosts:
            if result.error is not None:
                raise result.error


class _StepClock(BaseStateCallback):
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
def _timed(result: HostResult, phase: str) -> Iterator[None]:
    start = time.monotonic()
    try:
        yield
    finally:
        result.timings[phase] = round(time.monotonic() - start, 3)


@contextmanager
def _pyinfra_logging(enabled: bool) -> Iterator[None]:
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


def _run_pyinfra(cfg: HostConfig, key: Path, result: HostResult, make: DeployFactory) -> None:
    """Connect with ``key``, add the deploy ``make`` returns for the host, run it.

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
    clock = _StepClock()
    state.add_callback_handler(clock)
    with _timed(result, "connect"), suppress(PyinfraError):
        connect_all(state)
    target = state.inventory.get_host(cfg.name)
    if target not in state.activated_hosts:
        raise AccessError(cfg.name, f"pyinfra could not connect to {cfg.address}:{cfg.ssh_port}")
    try:
        with _timed(result, "prepare"):
            func, args = make(target)
        with _timed(result, "plan"):
            add_deploy(state, func, *args)
        # A failing operation raises "No hosts remaining"; it is recorded below and explained
        # by the gate record when the gate refused.
        with _timed(result, "ops"), suppress(PyinfraError):
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
    failed = [step.name for step in result.steps if not step.ok]
    if failed:
        raise DeployError(cfg.name, f"step failed: {failed[0]}")


def ensure_access(
    cfg: HostConfig, accept_new_host_key: bool = False, result: HostResult | None = None
) -> None:
    """Trust the host key, then make sure the own key logs in (bootstrapping it if needed).

    Raises AccessError (or HostKeyChangedError) naming the host and the cause.
    """
    result = result or HostResult(host=cfg.name, url=cfg.url)
    with _timed(result, "access"):
        check_host_key(cfg, accept_new_host_key)
        key = choose_login_key(cfg)
    if key != cfg.own_key:
        with _timed(result, "bootstrap"):
            _run_pyinfra(cfg, key, result, lambda _: (plans.bootstrap_access, (cfg,)))
            if not key_logs_in(cfg, cfg.own_key):
                raise AccessError(
                    cfg.name, f"{cfg.own_key} still not accepted after authorizing it"
                )


def make_plan(
    target: Host,
    cfg: HostConfig,
    bundle: ReleaseBundle,
    options: DeployOptions,
    record: GateRecord | None = None,
) -> plans.Plan:
    """The Plan for a connected host: lock and wheelhouse for *its* Python, token read now."""
    python = target.get_fact(TargetPython)
    if python is None:
        raise DeployError(cfg.name, "python3 is not installed on the host")
    lock = pinned_requirements(python)
    wheelhouse = None
    if cfg.install == "offline":
        wheelhouse = build_wheelhouse(options.cache_dir, lock, python)
    return plans.Plan(
        cfg=cfg,
        lock=lock,
        installer=fetch_installer(options.cache_dir, python),
        wheelhouse=wheelhouse,
        bundle=bundle,
        token=cfg.read_token(),
        gate_timeout=options.gate_timeout,
        record=record or GateRecord(),
    )


HostDeploy = Callable[[Host, GateRecord], tuple[Callable[..., Any], tuple[Any, ...]]]


def _serve_host(
    cfg: HostConfig,
    options: DeployOptions,
    result: HostResult,
    make: HostDeploy,
    canaries: Sequence[Canary],
) -> HostResult:
    """Access, the pyinfra run ``make`` describes, then proof: lockdown holds, the app answers."""
    started = time.monotonic()
    record = GateRecord()
    try:
        ensure_access(cfg, options.accept_new_host_key, result)
        try:
            _run_pyinfra(cfg, cfg.own_key, result, lambda target: make(target, record))
        except DeployError as e:
            raise record.failure or e from None
        with _timed(result, "verify"):
            verify_lockdown(cfg)
            probe = wait_healthy(cfg.url, canaries, timeout=options.gate_timeout)
        if not probe.ok:
            raise DeployError(cfg.name, f"{cfg.url} is not healthy afterwards: {probe.cause}")
        result.model_version = probe.model_version or result.model_version
        result.ok = True
    except DeployError as e:
        result.error = e
    result.timings["total"] = round(time.monotonic() - started, 3)
    return result


def _deploy_app(
    target: Host, record: GateRecord, cfg: HostConfig, bundle: ReleaseBundle, options: DeployOptions
) -> tuple[Callable[..., Any], tuple[Any, ...]]:
    return plans.deploy_app, (make_plan(target, cfg, bundle, options, record),)


def _rollback_app(
    target: Host, record: GateRecord, cfg: HostConfig, options: DeployOptions
) -> tuple[Callable[..., Any], tuple[Any, ...]]:
    return plans.rollback_app, (cfg, options.gate_timeout, record)


def deploy(hosts: Sequence[HostConfig], options: DeployOptions | None = None) -> DeployResult:
    """Deploy the app and model to every host; never raises for a host's failure.

    Each HostResult says whether that host serves the release (``ok``), which steps changed
    something (empty on a healthy host: a no-op), per-step and per-phase seconds, and the error
    naming host and cause when it failed. ``result.raise_for_errors()`` turns failures into
    exceptions for callers that prefer them.
    """
    options = options or DeployOptions()
    bundle = build_release(options.app_dir, options.model_dir, options.cache_dir)
    results = []
    with _pyinfra_logging(options.output):
        for cfg in hosts:
            make = partial(_deploy_app, cfg=cfg, bundle=bundle, options=options)
            result = HostResult(
                cfg.name, cfg.url, release=bundle.id, model_version=bundle.model_version
            )
            results.append(_serve_host(cfg, options, result, make, bundle.canaries))
    return DeployResult(results)


def rollback(hosts: Sequence[HostConfig], options: DeployOptions | None = None) -> DeployResult:
    """Serve each host's previous release again (``current`` and ``previous`` swap places)."""
    options = options or DeployOptions()
    results = []
    with _pyinfra_logging(options.output):
        for cfg in hosts:
            make = partial(_rollback_app, cfg=cfg, options=options)
            result = HostResult(cfg.name, cfg.url)
            results.append(_serve_host(cfg, options, result, make, DEFAULT_CANARIES))
    return DeployResult(results)
