"""The deploy as pyinfra ``@deploy`` functions, shared by the library API and the pyinfra CLI.

Order matters and reads top to bottom: lock access down, check the host can take the release,
runtime (a new lock gets a venv of its own), release, service files, gate (release and venv),
switch (release, then venv), (re)start, verify, prune (releases, then their venvs). A restart
follows from what earlier operations *did* (checked when the service operation runs), because
pyinfra re-reads facts when an operation runs and by then the unit or token file would already
look unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.api.operation import OperationMeta

from mlopsdeploy.config import HostConfig
from mlopsdeploy.deployment.control.appspec import AppSpec
from mlopsdeploy.deployment.control.bundle import ReleaseBundle
from mlopsdeploy.deployment.control.ssh_login import public_key_line
from mlopsdeploy.deployment.control.wheelhouse import Lock
from mlopsdeploy.deployment.facts.host import FreeSpaceMB, PortListeners
from mlopsdeploy.deployment.facts.release import Releases
from mlopsdeploy.deployment.facts.runtime import LockStamp, Venvs
from mlopsdeploy.deployment.facts.service import ServiceStatus, WorkerUnits
from mlopsdeploy.deployment.operations import haproxy, release, runtime, service, sshd, workers
from mlopsdeploy.deployment.operations.access import authorized_key
from mlopsdeploy.deployment.operations.gate import (
    Gate,
    GateRecord,
    candidate_gated,
    serving_verified,
)
from mlopsdeploy.errors import DeployError

# Installed size of a venv relative to its wheels (torch unpacks to ~3.5x), plus headroom.
VENV_EXPANSION = 4


@dataclass
class Plan:
    """Everything one host's deploy needs, prepared on the control machine."""

    cfg: HostConfig
    lock: Lock
    installer: Path
    wheelhouse: Path | None
    bundle: ReleaseBundle
    token: str | None = field(default=None, repr=False)
    secrets: tuple[tuple[str, str], ...] = field(default=(), repr=False)
    awaiting_trust: str | None = None
    """Fingerprint of a host key nobody confirmed: secrets are withheld, the app is told why."""
    gate_timeout: float = 120.0
    record: GateRecord = field(default_factory=GateRecord)


def _wheelhouse_mb(plan: Plan) -> int:
    if plan.wheelhouse is None:
        return 0
    return sum(p.stat().st_size for p in plan.wheelhouse.iterdir()) // 2**20 + 1


def _check_capacity(plan: Plan, venv_ok: bool, staged: bool) -> None:
    """Refuse early, naming the cause, when the host cannot take what is about to be pushed."""
    cfg = plan.cfg
    need = 0 if venv_ok else _wheelhouse_mb(plan) * VENV_EXPANSION
    need += 0 if staged else plan.bundle.size_mb * 2
    if need:
        free = host.get_fact(FreeSpaceMB, path=cfg.base_dir)
        if free < need:
            raise DeployError(
                cfg.name,
                f"not enough disk space for {cfg.base_dir}: ~{need} MB needed, {free} MB free",
            )


def _check_port(cfg: HostConfig, port: int, purpose: str) -> None:
    taken = host.get_fact(PortListeners, port=port)
    if taken:
        raise DeployError(cfg.name, f"port {port} ({purpose}) is already taken: {taken[0]}")


def _app_holds_port(cfg: HostConfig, spec: AppSpec | None) -> bool:
    """Whether the app port is taken by the app itself (its socket, or the single unit)."""
    if workers.serves_socket(spec):
        layout = host.get_fact(
            WorkerUnits,
            prefix=workers.PREFIX,
            scope=cfg.service_scope,
            legacy_file=f"{service.unit_dir(cfg)}/{workers.LEGACY_UNIT}",
        )
        return layout.socket_active or layout.legacy
    return host.get_fact(ServiceStatus, unit=service.UNIT, scope=cfg.service_scope).active


def _app_running(
    record: GateRecord,
    cfg: HostConfig,
    spec: AppSpec | None,
    restart: bool,
    after: tuple[OperationMeta, ...] = (),
) -> OperationMeta:
    """The app up: workers restarted in turn (bundled app), else the single unit restarted."""
    if workers.serves_socket(spec):
        return workers.workers_running(
            name="App service", cfg=cfg, rollout=record.rollout, restart=restart, after=after
        )
    return service.service_running(name="App service", cfg=cfg, restart=restart, after=after)


def own_key_only(cfg: HostConfig, record: GateRecord) -> None:
    """Every host's first steps: the own key in, the shared default key out, sshd hardened."""
    authorized_key(name="Authorize own key", key_line=public_key_line(cfg.own_key))
    if cfg.default_key is not None:
        authorized_key(
            name="Lock out the shared default key",
            key_line=public_key_line(cfg.default_key),
            present=False,
        )
    sshd.sshd_hardened(name="sshd hardening", cfg=cfg, record=record)


@deploy("mlopsdeploy")
def deploy_app(plan: Plan) -> None:
    """Bring one host to ``plan``: own key only, runtime, release gated and serving."""
    cfg = plan.cfg
    own_key_only(cfg, plan.record)

    digest = plan.lock.digest
    venvs = host.get_fact(Venvs, base=cfg.base_dir)
    serving_venv = venvs.serving or venvs.legacy or None
    venv_ok = digest in (host.get_fact(LockStamp, path=runtime.venv_dir(cfg, digest)), venvs.legacy)
    index = host.get_fact(Releases, base=cfg.base_dir)
    releasing = index.current != plan.bundle.id
    # A new lock is gated like a new release: the workers stay on their venv until it passed.
    moving_venv = serving_venv is not None and serving_venv != digest
    gated = bool(index.current) and (releasing or moving_venv)
    _check_capacity(plan, venv_ok, staged=plan.bundle.id in index.ids)
    if not _app_holds_port(cfg, plan.bundle.spec):
        _check_port(cfg, cfg.serve_port, "app port")
    if gated:
        _check_port(cfg, cfg.probe_port, "candidate port")

    runtime.os_packages(name="OS packages")
    service.base_dir(name="Deploy root", cfg=cfg)
    runtime.installer(name="Installer (uv)", cfg=cfg, wheel=plan.installer)
    runtime.venv_moved_aside(name="Venv layout", cfg=cfg)
    venv = runtime.venv(
        name="Runtime venv",
        cfg=cfg,
        lock=plan.lock,
        installer_wheel=plan.installer,
        wheelhouse=plan.wheelhouse,
    )
    staged = release.release_staged(
        name=f"Stage release {plan.bundle.id}", base=cfg.base_dir, bundle=plan.bundle
    )
    release.release_sealed(
        name=f"Seal release {plan.bundle.id}", base=cfg.base_dir, bundle=plan.bundle
    )
    values = service.EnvValues(plan.token, plan.secrets, plan.awaiting_trust)
    token = service.env_file(name="Token file (0600)", cfg=cfg, values=values)
    spec = plan.bundle.spec
    if workers.serves_socket(spec):
        unit = workers.unit_files(name="App units", cfg=cfg)
    else:
        unit = service.unit_file(name="App unit", cfg=cfg, spec=spec)
    service.unit_file(name="Candidate unit", cfg=cfg, role="candidate", spec=spec)
    service.linger(name="Linger", cfg=cfg)

    gate = Gate(
        cfg,
        plan.bundle,
        plan.gate_timeout,
        plan.record,
        venv=digest,
        restore_venv=serving_venv if moving_venv else None,
        new_release=releasing,
    )
    if gated:
        candidate_gated(name="Gate candidate release", gate=gate)
    if index.current and serving_venv:
        # The release serving now keeps its venv for a rollback (hosts from before venvs/).
        runtime.venv_recorded(
            name="Record serving venv", cfg=cfg, release_id=index.current, digest=serving_venv
        )
    release.current_release(
        name="Switch current release", base=cfg.base_dir, release_id=plan.bundle.id
    )
    switched = runtime.venv_serving(name="Switch venv", cfg=cfg, digest=digest)
    inputs = (venv, switched, staged, token, unit)
    running = _app_running(plan.record, cfg, spec, releasing, inputs)
    serving_verified(name="Verify serving release", gate=gate, after=running)
    runtime.venv_recorded(
        name="Record release venv", cfg=cfg, release_id=plan.bundle.id, digest=digest
    )
    release.releases_pruned(name="Prune old releases", base=cfg.base_dir, keep=cfg.keep_releases)
    runtime.venvs_pruned(name="Prune old venvs", cfg=cfg)


@deploy("mlopsdeploy rollback")
def rollback_app(
    cfg: HostConfig, gate_timeout: float, record: GateRecord, spec: AppSpec | None = None
) -> None:
    """Serve the ``previous`` release again and verify it answers correctly."""
    index = host.get_fact(Releases, base=cfg.base_dir)
    if not index.previous or index.previous == index.current:
        raise DeployError(cfg.name, "no previous release to roll back to")
    target = ReleaseBundle(id=index.previous, files={}, model_version="previous", spec=spec)
    venvs = host.get_fact(Venvs, base=cfg.base_dir)
    # Back to the venv the previous release served with, if it recorded one.
    venv = venvs.recorded.get(index.previous) or venvs.serving or venvs.legacy or ""
    release.current_release(
        name="Switch to previous release", base=cfg.base_dir, release_id=target.id
    )
    if venv and venv != venvs.serving:
        runtime.venv_serving(name="Switch to its venv", cfg=cfg, digest=venv)
    running = _app_running(record, cfg, spec, restart=True)
    restore = venvs.serving if venv != venvs.serving else None
    gate = Gate(cfg, target, gate_timeout, record, venv=venv, restore_venv=restore)
    serving_verified(name="Verify serving release", gate=gate, after=running)


@deploy("mlopsdeploy bootstrap")
def bootstrap_access(cfg: HostConfig) -> None:
    """Run once with the shared default key: authorize the user's own key (lockout comes later)."""
    authorized_key(name="Authorize own key", key_line=public_key_line(cfg.own_key))


@dataclass
class LbPlan:
    """Everything the load balancer host's deploy needs, prepared on the control machine."""

    cfg: HostConfig
    config: str
    """haproxy.cfg, rendered from the inventory's app hosts."""
    debs: tuple[Path, ...] = ()
    """The .deb files the host lacks (offline install); () when it has them or installs online."""
    record: GateRecord = field(default_factory=GateRecord)


@deploy("mlopsdeploy load balancer")
def deploy_lb(plan: LbPlan) -> None:
    """Bring the load balancer host to ``plan``: own key only, HAProxy serving its config."""
    cfg = plan.cfg
    own_key_only(cfg, plan.record)
    installed = haproxy.packages_installed(name="HAProxy packages", cfg=cfg, debs=plan.debs)
    config = haproxy.config_file(name="HAProxy config", cfg=cfg, text=plan.config)
    haproxy.service_running(name="HAProxy service", after=(installed, config))
