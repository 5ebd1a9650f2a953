"""``deploy()`` and ``rollback()``: the deploy's public entry points, one host at a time.

This is what ``mlopsdeploy.deploy()`` / ``rollback()`` (and the CLI, the resilience suite and the
watchdog) call. Each host gets its own pyinfra State so one host's failure is reported as that
host's, with its cause, and never stops or half-applies another host.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
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
from mlopsdeploy.deployment.control.probe import DEFAULT_CANARIES, Canary, wait_healthy
from mlopsdeploy.deployment.control.python_support import UnsupportedPython, check_python
from mlopsdeploy.deployment.control.ssh_login import choose_login_key, key_logs_in, verify_lockdown
from mlopsdeploy.deployment.control.wheelhouse import (
    APP_DISTRIBUTION,
    Lock,
    build_wheelhouse,
    fetch_installer,
    pinned_requirements,
)
from mlopsdeploy.deployment.facts.runtime import PythonTarget, TargetPython
from mlopsdeploy.deployment.operations.gate import GateRecord
from mlopsdeploy.deployment.pyinfra_run import pyinfra_logging, run_pyinfra, timed
from mlopsdeploy.deployment.results import DeployOptions, DeployResult, HostResult
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
    with timed(result, "access"):
        settle_host_key(cfg, accept_new_host_key, unconfirmed_host_key)
        key = choose_login_key(cfg)
    if key != cfg.own_key:

        def bootstrap(target: Host) -> tuple[Callable[..., Any], tuple[Any, ...]]:
            if preflight is not None:
                preflight(target)
            return plans.bootstrap_access, (cfg,)

        with timed(result, "bootstrap"):
            run_pyinfra(cfg, key, result, bootstrap)
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
    lock, python, wheelhouse = prepare_runtime(
        target, cfg, options, bundle.spec, bundle.requirements
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
) -> tuple[Lock, PythonTarget, Path | None]:
    """Lock (and offline, wheelhouse) for the host's Python; DeployError when it cannot run
    the pinned stack. Reads one fact and changes nothing on the host.

    + requires: the bundled app's requirements for its model's runtime (see build_release)
    """
    python = target.get_fact(TargetPython)
    if python is None:
        raise DeployError(cfg.name, "python3 is not installed on the host")
    try:
        check_python(python.version, APP_DISTRIBUTION)
        lock = pinned_requirements(python, requires=spec.requirements if spec else requires)
        wheelhouse = None
        if cfg.install == "offline":
            wheelhouse = build_wheelhouse(options.cache_dir, lock, python)
    except UnsupportedPython as e:
        raise DeployError(cfg.name, f"{e}; nothing was changed on the host") from None
    return lock, python, wheelhouse


HostDeploy = Callable[[Host, GateRecord], tuple[Callable[..., Any], tuple[Any, ...]]]


def _serve_host(
    cfg: HostConfig,
    options: DeployOptions,
    result: HostResult,
    make: HostDeploy,
    canaries: Sequence[Canary],
    preflight: Preflight | None = None,
    spec: AppSpec | None = None,
) -> HostResult:
    """Access, the pyinfra run ``make`` describes, then proof: lockdown holds, the app answers."""
    started = time.monotonic()
    record = GateRecord()
    try:
        ensure_access(
            cfg, options.accept_new_host_key, result, preflight, options.unconfirmed_host_key
        )
        try:
            run_pyinfra(cfg, cfg.own_key, result, lambda target: make(target, record))
        except DeployError as e:
            raise record.failure or e from None
        with timed(result, "verify"):
            verify_lockdown(cfg)
            probe = wait_healthy(cfg.url, canaries, timeout=options.gate_timeout, spec=spec)
        if not probe.ok:
            raise DeployError(cfg.name, f"{cfg.url} is not healthy afterwards: {probe.cause}")
        result.model_version = probe.model_version or result.model_version
        result.ok = True
    except DeployError as e:
        result.error = e
    except (ConfigError, AppSpecError, RuntimeError, OSError) as e:
        # Control-side work for this host (its token file, the wheelhouse for its Python) failed:
        # that is this host's failure, reported like any other, never the other hosts'.
        result.error = DeployError(cfg.name, f"{type(e).__name__}: {e}")
    result.timings["total"] = round(time.monotonic() - started, 3)
    return result


def _deploy_app(
    target: Host, record: GateRecord, cfg: HostConfig, bundle: ReleaseBundle, options: DeployOptions
) -> tuple[Callable[..., Any], tuple[Any, ...]]:
    return plans.deploy_app, (make_plan(target, cfg, bundle, options, record),)


def _rollback_app(
    target: Host, record: GateRecord, cfg: HostConfig, options: DeployOptions
) -> tuple[Callable[..., Any], tuple[Any, ...]]:
    spec = load_app_spec(cfg.app_dir or options.app_dir)
    return plans.rollback_app, (cfg, options.gate_timeout, record, None if spec.bundled else spec)


def deploy(hosts: Sequence[HostConfig], options: DeployOptions | None = None) -> DeployResult:
    """Deploy the app and model to every host; never raises for a host's failure.

    Each HostResult says whether that host serves the release (``ok``), which steps changed
    something (empty on a healthy host: a no-op), per-step and per-phase seconds, and the error
    naming host and cause when it failed. ``result.raise_for_errors()`` turns failures into
    exceptions for callers that prefer them.
    """
    options = options or DeployOptions()
    bundles: dict[Path, ReleaseBundle] = {}
    for cfg in hosts:  # every app spec is checked before any host is touched
        app_dir = cfg.app_dir or options.app_dir
        if app_dir not in bundles:
            bundles[app_dir] = build_release(app_dir, options.model_dir, options.cache_dir)
    results = []
    with pyinfra_logging(options.output):
        for cfg in hosts:
            bundle = bundles[cfg.app_dir or options.app_dir]
            make = partial(_deploy_app, cfg=cfg, bundle=bundle, options=options)
            result = HostResult(
                cfg.name, cfg.url, release=bundle.id, model_version=bundle.model_version
            )
            preflight = partial(
                prepare_runtime,
                cfg=cfg,
                options=options,
                spec=bundle.spec,
                requires=bundle.requirements,
            )
            results.append(
                _serve_host(cfg, options, result, make, bundle.canaries, preflight, bundle.spec)
            )
    return DeployResult(results)


def rollback(hosts: Sequence[HostConfig], options: DeployOptions | None = None) -> DeployResult:
    """Serve each host's previous release again (``current`` and ``previous`` swap places)."""
    options = options or DeployOptions()
    results = []
    with pyinfra_logging(options.output):
        for cfg in hosts:
            make = partial(_rollback_app, cfg=cfg, options=options)
            result = HostResult(cfg.name, cfg.url)
            spec = load_app_spec(cfg.app_dir or options.app_dir)
            checks = None if spec.bundled else spec
            results.append(_serve_host(cfg, options, result, make, DEFAULT_CANARIES, spec=checks))
    return DeployResult(results)
