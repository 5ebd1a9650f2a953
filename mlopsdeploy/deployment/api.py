"""``deploy()`` and ``rollback()``: the deploy's public entry points, across hosts in batches.

This is what ``mlopsdeploy.deploy()`` / ``rollback()`` (and the CLI, the resilience suite and the
watchdog) call. The hosts of a batch share one pyinfra State, so pyinfra runs each operation
across them at once; a host's failure is still reported as that host's, with its cause, and
never stops or half-applies another host. Control-side work is done once per distinct target:
the release bundle once per app, the dependency lock once per Python and requirement set (see
``Runtimes``), the wheelhouse once per lock and platform (cached by content).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from pyinfra.api import Host

from mlopsdeploy.config import ConfigError, HostConfig
from mlopsdeploy.deployment import plans
from mlopsdeploy.deployment.control.appspec import AppSpec, AppSpecError, secret_values
from mlopsdeploy.deployment.control.appspec_load import load_app_spec
from mlopsdeploy.deployment.control.bundle import ReleaseBundle, build_release
from mlopsdeploy.deployment.control.host_trust import awaiting_trust, settle_host_key
from mlopsdeploy.deployment.control.probe import (
    DEFAULT_CANARIES,
    Canary,
    ProbeResult,
    wait_healthy,
)
from mlopsdeploy.deployment.control.python_support import UnsupportedPython
from mlopsdeploy.deployment.control.ssh_login import choose_login_key, key_logs_in, verify_lockdown
from mlopsdeploy.deployment.control.wheelhouse import (
    Lock,
    build_wheelhouse,
    checked_lock,
    fetch_installer,
)
from mlopsdeploy.deployment.facts.runtime import PythonTarget, TargetPython
from mlopsdeploy.deployment.operations.gate import GateRecord
from mlopsdeploy.deployment.pyinfra_run import (
    DeployFactory,
    HostRun,
    pyinfra_logging,
    run_hosts,
    run_pyinfra,
    timed,
)
from mlopsdeploy.deployment.results import DeployOptions, DeployResult, HostResult
from mlopsdeploy.deployment.rollout import NoHooks, RolloutHooks, fail_limit, split, stop_reason
from mlopsdeploy.errors import AccessError, DeployError

Preflight = Callable[[Host], object]


def ensure_access(
    cfg: HostConfig,
    accept_new_host_key: bool = False,
    result: HostResult | None = None,
    preflight: Preflight | None = None,
    unconfirmed_host_key: bool = False,
) -> None:
    """Trust the host key, then make sure the own key logs in (bootstrapping it if needed).

    ``preflight`` runs on the connected host before the bootstrap changes anything, so a host
    the deploy would refuse anyway (e.g. an unsupported Python) is left exactly as it was.
    Raises AccessError (or HostKeyChangedError) naming the host and the cause.
    """
    result = result or HostResult(host=cfg.name, url=cfg.url)
    key = _login_key(cfg, accept_new_host_key, unconfirmed_host_key, result)
    if key != cfg.own_key:
        with timed(result, "bootstrap"):
            run_pyinfra(cfg, key, result, _bootstrap(cfg, preflight))
            _check_own_key(cfg)


def _login_key(
    cfg: HostConfig, accept_new_host_key: bool, unconfirmed_host_key: bool, result: HostResult
) -> Path:
    """The host key settled, then the key that logs in: the own key, else the default key."""
    with timed(result, "access"):
        settle_host_key(cfg, accept_new_host_key, unconfirmed_host_key)
        return choose_login_key(cfg)


def _bootstrap(cfg: HostConfig, preflight: Preflight | None) -> DeployFactory:
    """The run with the default key that authorizes the own key, after the preflight passed."""

    def bootstrap(target: Host) -> tuple[Callable[..., Any], tuple[Any, ...]]:
        if preflight is not None:
            preflight(target)
        return plans.bootstrap_access, (cfg,)

    return bootstrap


def _check_own_key(cfg: HostConfig) -> None:
    if not key_logs_in(cfg, cfg.own_key):
        raise AccessError(cfg.name, f"{cfg.own_key} still not accepted after authorizing it")


class Runtimes:
    """The dependency lock per distinct host Python and requirement set, computed once a deploy.

    The lock is the same for every host on the same Python (version, machine) with the same
    requirements, and computing it walks the whole installed closure: N such hosts cost one
    computation, not N. Used from one thread only (pyinfra_run calls each host's ``make`` in
    the caller's thread), since packaging's marker parsing is not thread-safe on CPython 3.11.
    """

    def __init__(self, cache: Path | None = None) -> None:
        """+ cache: keep accepted locks there for later deploys (see ``checked_lock``)"""
        self._locks: dict[tuple[PythonTarget, tuple[str, ...] | None], Lock] = {}
        self._cache = cache

    def lock(self, python: PythonTarget, requires: Sequence[str] | None) -> Lock:
        """The pinned lock for ``python``; UnsupportedPython when the stack cannot run there."""
        key = (python, None if requires is None else tuple(requires))
        if key not in self._locks:
            self._locks[key] = checked_lock(python, requires, self._cache)
        return self._locks[key]


def make_plan(
    target: Host,
    cfg: HostConfig,
    bundle: ReleaseBundle,
    options: DeployOptions,
    record: GateRecord | None = None,
    runtimes: Runtimes | None = None,
) -> plans.Plan:
    """The Plan for a connected host: lock and wheelhouse for *its* Python, token read now."""
    lock, python, wheelhouse = prepare_runtime(
        target, cfg, options, bundle.spec, bundle.requirements, runtimes
    )
    # A host key nobody confirmed may be an impostor's: it gets the app, never the secrets.
    untrusted = awaiting_trust(cfg)
    return plans.Plan(
        cfg=cfg,
        lock=lock,
        installer=fetch_installer(options.cache_dir, python),
        wheelhouse=wheelhouse,
        bundle=bundle,
        token=None if untrusted else cfg.read_token(),
        secrets=secret_values(bundle.spec, os.environ) if bundle.spec and not untrusted else (),
        awaiting_trust=untrusted,
        gate_timeout=options.gate_timeout,
        record=record or GateRecord(),
    )


def prepare_runtime(
    target: Host,
    cfg: HostConfig,
    options: DeployOptions,
    spec: AppSpec | None = None,
    requires: Sequence[str] | None = None,
    runtimes: Runtimes | None = None,
) -> tuple[Lock, PythonTarget, Path | None]:
    """Lock (and offline, wheelhouse) for the host's Python; DeployError when it cannot run
    the pinned stack. Reads one fact and changes nothing on the host.

    + requires: the bundled app's requirements for its model's runtime (see build_release)
    + runtimes: the deploy's locks, shared by its hosts (default: this host's own)
    """
    python = target.get_fact(TargetPython)
    if python is None:
        raise DeployError(cfg.name, "python3 is not installed on the host")
    try:
        runtimes = runtimes or Runtimes(options.cache_dir)
        lock = runtimes.lock(python, spec.requirements if spec else requires)
        wheelhouse = None
        if cfg.install == "offline":
            wheelhouse = build_wheelhouse(options.cache_dir, lock, python)
    except UnsupportedPython as e:
        raise DeployError(cfg.name, f"{e}; nothing was changed on the host") from None
    return lock, python, wheelhouse


def verify_served(
    cfg: HostConfig, canaries: Sequence[Canary], timeout: float, spec: AppSpec | None = None
) -> ProbeResult:
    """The end state, proven from the control machine: the lockdown holds, the app answers
    /readyz and the canaries correctly. Raises DeployError (AccessError) naming the host."""
    verify_lockdown(cfg)
    probe = wait_healthy(cfg.url, canaries, timeout=timeout, spec=spec)
    if not probe.ok:
        raise DeployError(cfg.name, f"{cfg.url} is not healthy afterwards: {probe.cause}")
    return probe


HostDeploy = Callable[[Host, GateRecord], tuple[Callable[..., Any], tuple[Any, ...]]]


@dataclass
class _Job:
    """One host's part of a batch: what to run there, how to prove it, where results go."""

    cfg: HostConfig
    result: HostResult
    make: HostDeploy
    canaries: Sequence[Canary]
    preflight: Preflight | None = None
    spec: AppSpec | None = None
    record: GateRecord = field(default_factory=GateRecord)
    key: Path | None = None
    """The key that logs in now: the own key, or the default key before the bootstrap."""
    error: Exception | None = None


def _run_all(
    jobs: Sequence[_Job],
    run_for: Callable[[_Job], HostRun],
    phase: str,
    then: Callable[[_Job], None],
) -> None:
    """One pyinfra run over ``jobs`` (timed as ``phase``), then ``then`` on each that passed."""
    if not jobs:
        return
    started = time.monotonic()
    runs = [run_for(job) for job in jobs]
    run_hosts(runs)
    for job, run in zip(jobs, runs, strict=True):
        job.error = run.error
    _each(then, [job for job in jobs if job.error is None])
    for job in jobs:
        job.result.timings[phase] = round(time.monotonic() - started, 3)


def _each(func: Callable[[_Job], None], jobs: Sequence[_Job]) -> None:
    """``func`` on every job at once (network waits, not CPU); one job stays in this thread."""
    if len(jobs) <= 1:
        for job in jobs:
            func(job)
        return
    with ThreadPoolExecutor(max_workers=len(jobs)) as pool:
        list(pool.map(func, jobs))


def _host_error(cfg: HostConfig, error: Exception) -> DeployError:
    """A failure as this host's DeployError; an unexpected kind (a bug) is raised as it is."""
    if isinstance(error, DeployError):
        return error
    if isinstance(error, ConfigError | AppSpecError | RuntimeError | OSError):
        # Control-side work for this host (its token file, the wheelhouse for its Python) failed:
        # that is this host's failure, reported like any other, never the other hosts'.
        return DeployError(cfg.name, f"{type(error).__name__}: {error}")
    raise error


def _serve_hosts(jobs: Sequence[_Job], options: DeployOptions) -> None:
    """Access to each host, one pyinfra run across all of them, then proof on each host.

    Proof is that the lockdown holds and the app answers /readyz and the canaries correctly
    from the control machine. A host's failure lands on its own result and never stops the
    others.
    """
    started = time.monotonic()

    def login_key(job: _Job) -> None:
        try:
            job.key = _login_key(
                job.cfg, options.accept_new_host_key, options.unconfirmed_host_key, job.result
            )
        except Exception as e:  # judged by _host_error below
            job.error = e

    def own_key(job: _Job) -> None:
        try:
            _check_own_key(job.cfg)
        except Exception as e:  # judged by _host_error below
            job.error = e

    def verify(job: _Job) -> None:
        try:
            with timed(job.result, "verify"):
                probe = verify_served(job.cfg, job.canaries, options.gate_timeout, job.spec)
            job.result.model_version = probe.model_version or job.result.model_version
            job.result.ok = True
        except Exception as e:  # judged by _host_error below
            job.error = e

    _each(login_key, jobs)
    # Hosts still on the shared default key get the own key in one run of their own first.
    _run_all(
        [job for job in jobs if job.error is None and job.key not in (None, job.cfg.own_key)],
        lambda job: HostRun(
            job.cfg, job.key or job.cfg.own_key, job.result, _bootstrap(job.cfg, job.preflight)
        ),
        "bootstrap",
        own_key,
    )
    runs = {
        job.cfg.name: HostRun(
            job.cfg, job.cfg.own_key, job.result, partial(_with_record, job.make, job.record)
        )
        for job in jobs
        if job.error is None
    }
    if runs:
        run_hosts(list(runs.values()))
    for job in jobs:
        run = runs.get(job.cfg.name)
        if run is not None and run.error is not None:
            # A refused gate explains a failed step better than the step's name does.
            gate = job.record.failure if isinstance(run.error, DeployError) else None
            job.error = gate or run.error
    _each(verify, [job for job in jobs if job.error is None])
    for job in jobs:
        if job.error is not None:
            job.result.error = _host_error(job.cfg, job.error)
        job.result.timings["total"] = round(time.monotonic() - started, 3)


def _with_record(
    make: HostDeploy, record: GateRecord, target: Host
) -> tuple[Callable[..., Any], tuple[Any, ...]]:
    return make(target, record)


def _deploy_app(
    target: Host,
    record: GateRecord,
    cfg: HostConfig,
    bundle: ReleaseBundle,
    options: DeployOptions,
    runtimes: Runtimes,
) -> tuple[Callable[..., Any], tuple[Any, ...]]:
    return plans.deploy_app, (make_plan(target, cfg, bundle, options, record, runtimes),)


def _rollback_app(
    target: Host, record: GateRecord, cfg: HostConfig, options: DeployOptions, spec: AppSpec | None
) -> tuple[Callable[..., Any], tuple[Any, ...]]:
    return plans.rollback_app, (cfg, options.gate_timeout, record, spec)


def deploy(
    hosts: Sequence[HostConfig],
    options: DeployOptions | None = None,
    hooks: RolloutHooks | None = None,
) -> DeployResult:
    """Deploy the app and model to every host, batch by batch; never raises for a host's failure.

    Each batch is one pyinfra run across its hosts, gated host by host on readiness and the
    canaries; ``options.batches`` cuts the hosts into batches (default: one), and once more
    hosts failed than ``options.max_fail`` allows, the batches not started keep the release they
    serve. ``hooks`` run around each batch (a load balancer drains and enables its hosts).

    Each HostResult says whether that host serves the release (``ok``), which steps changed
    something (empty on a healthy host: a no-op), per-step and per-phase seconds, the error
    naming host and cause when it failed, and its outcome; ``result.retry`` lists the hosts to
    deploy again. ``result.raise_for_errors()`` turns failures into exceptions for callers
    that prefer them.
    """
    options = options or DeployOptions()
    hooks = hooks or NoHooks()
    limit = fail_limit(options.max_fail, len(hosts))
    batches = split(list(hosts), options.batches)
    bundles: dict[Path, ReleaseBundle] = {}
    for cfg in hosts:  # every app spec is checked before any host is touched
        app_dir = cfg.app_dir or options.app_dir
        if app_dir not in bundles:
            bundles[app_dir] = build_release(app_dir, options.model_dir, options.cache_dir)
    # and one dependency lock per host Python, shared by every batch
    runtimes = Runtimes(options.cache_dir)
    results = {cfg.name: HostResult(cfg.name, cfg.url) for cfg in hosts}
    stopped: str | None = None
    failed: list[str] = []
    with pyinfra_logging(options.output):
        hooks.start(hosts, options)
        for number, batch in enumerate(batches, 1):
            jobs = []
            for cfg in batch:
                bundle = bundles[cfg.app_dir or options.app_dir]
                result = results[cfg.name]
                result.release, result.model_version = bundle.id, bundle.model_version
                result.batch = number
                jobs.append(_deploy_job(cfg, bundle, options, result, runtimes))
            _run_batch(jobs, options, hooks)
            failed += [job.cfg.name for job in jobs if not job.result.ok]
            stopped = stop_reason(failed, limit, len(batches) - number)
            if stopped:
                break
    # A load balancer deployed by the hooks reports its own outcome next to the app hosts'.
    lb_results: list[HostResult] = list(getattr(hooks, "results", []))
    return DeployResult([*results.values(), *lb_results], stopped=stopped)


def _deploy_job(
    cfg: HostConfig,
    bundle: ReleaseBundle,
    options: DeployOptions,
    result: HostResult,
    runtimes: Runtimes,
) -> _Job:
    make = partial(_deploy_app, cfg=cfg, bundle=bundle, options=options, runtimes=runtimes)
    preflight = partial(
        prepare_runtime,
        cfg=cfg,
        options=options,
        spec=bundle.spec,
        requires=bundle.requirements,
        runtimes=runtimes,
    )
    return _Job(cfg, result, make, bundle.canaries, preflight, bundle.spec)


def _run_batch(jobs: list[_Job], options: DeployOptions, hooks: RolloutHooks) -> None:
    """One batch: drained, deployed and gated, put back if asked and it failed, enabled."""
    batch = [job.cfg for job in jobs]
    try:
        hooks.before_batch(batch)
    except DeployError as e:
        for job in jobs:
            job.result.error = DeployError(job.cfg.name, f"not deployed: {e}")
        return
    _serve_hosts(jobs, options)
    if options.rollback_failed and any(not job.result.ok for job in jobs):
        _put_back(jobs, options)
    try:
        hooks.after_batch(batch, [job.result for job in jobs])
    except DeployError as e:
        for job in jobs:
            job.result.ok = False
            job.result.error = job.result.error or DeployError(job.cfg.name, str(e))


def _put_back(jobs: Sequence[_Job], options: DeployOptions) -> None:
    """Serve the previous release again on the hosts of a failed batch that switched to the new.

    A host whose gate refused the release never left its previous one; a host that went
    through goes back, so the whole batch serves what it served before.
    """
    switched = [
        job
        for job in jobs
        if job.result.ok
        and any(step.endswith("Switch current release") for step in job.result.changed)
    ]
    if not switched:
        return
    back = rollback([job.cfg for job in switched], options)
    for job, done in zip(switched, back.hosts, strict=True):
        job.result.ok = False
        if done.ok:
            job.result.rolled_back = True
        else:
            job.result.error = DeployError(
                job.cfg.name, f"rollback of the failed batch: {done.error}"
            )


def rollback(hosts: Sequence[HostConfig], options: DeployOptions | None = None) -> DeployResult:
    """Serve each host's previous release again (``current`` and ``previous`` swap places)."""
    options = options or DeployOptions()
    jobs = []
    for cfg in hosts:
        spec = load_app_spec(cfg.app_dir or options.app_dir)
        checks = None if spec.bundled else spec
        make = partial(_rollback_app, cfg=cfg, options=options, spec=checks)
        jobs.append(_Job(cfg, HostResult(cfg.name, cfg.url), make, DEFAULT_CANARIES, spec=checks))
    with pyinfra_logging(options.output):
        _serve_hosts(jobs, options)
    return DeployResult([job.result for job in jobs])
