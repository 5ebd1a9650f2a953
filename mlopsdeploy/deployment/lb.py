"""The load balancer in a fleet deploy: HAProxy on the inventory's ``lb`` host, and the rollout
hooks that drain each batch's hosts in it before their release restarts them.

The rollout (deployment/rollout.py) calls ``start`` once, before its first batch: the LB host is
deployed then, so even the first batch is drained. ``before_batch`` drains the batch's hosts
(HAProxy sends them no new request and the ones in flight finish), ``after_batch`` puts them
back once their gate passed and waits until HAProxy's own health check sees them UP, so the next
batch is never drained while this one is still out.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from pyinfra.api import Host
from pyinfra.facts.deb import DebPackages

from mlopsdeploy.config import ConfigError, HostConfig
from mlopsdeploy.deployment import plans
from mlopsdeploy.deployment.api import ensure_access
from mlopsdeploy.deployment.control import haproxy
from mlopsdeploy.deployment.control.debs import control_release, fetch_debs, missing_versions
from mlopsdeploy.deployment.control.ssh_login import verify_lockdown
from mlopsdeploy.deployment.facts.haproxy import DpkgStatus, HostDebianRelease
from mlopsdeploy.deployment.operations.haproxy import PACKAGES
from mlopsdeploy.deployment.pyinfra_run import run_pyinfra, timed
from mlopsdeploy.deployment.results import DeployOptions, HostResult
from mlopsdeploy.errors import DeployError

LB_GROUP = "lb"
#: In-flight requests of a drained host get this long to finish before its restart goes ahead
#: (the workers' socket keeps even those waiting, so this only spares them a slower answer).
DRAIN_TIMEOUT_S = 30.0
#: After its gate, a host must pass HAProxy's own health check (2 in a row, 2 s apart) in this.
UP_TIMEOUT_S = 60.0


def split_inventory(hosts: Sequence[HostConfig]) -> tuple[list[HostConfig], list[HostConfig]]:
    """(app hosts, load balancer hosts): a host in the ``lb`` group never gets the app."""
    app = [cfg for cfg in hosts if LB_GROUP not in cfg.groups]
    return app, [cfg for cfg in hosts if LB_GROUP in cfg.groups]


def lb_plan(
    target: Host, lb: HostConfig, app_hosts: Sequence[HostConfig], options: DeployOptions
) -> plans.LbPlan:
    """The LB's Plan for a connected host: its config, and the .deb files it lacks (offline).

    Reads the host's dpkg status only when a package is missing, so a deployed LB costs one fact.
    """
    config = haproxy.render_config(lb, haproxy.backends(app_hosts))
    installed = target.get_fact(DebPackages)
    if lb.install == "online" or all(name in installed for name in PACKAGES):
        return plans.LbPlan(cfg=lb, config=config)
    release = target.get_fact(HostDebianRelease)
    codename, arch = control_release()
    if release is None or (release.codename, release.arch) != (codename, arch):
        found = f"{release.codename}/{release.arch}" if release else "no dpkg"
        raise DeployError(
            lb.name,
            f"HAProxy for an offline host is fetched with this machine's apt ({codename}/{arch}), "
            f'but the host runs {found}: use install = "online" for it, or a {codename} host',
        )
    versions = missing_versions(PACKAGES, target.get_fact(DpkgStatus))
    debs = fetch_debs(options.cache_dir / "debs" / f"{codename}-{arch}", versions)
    return plans.LbPlan(cfg=lb, config=config, debs=tuple(debs))


def verify_lb(lb: HostConfig, app_hosts: Sequence[HostConfig]) -> None:
    """The LB's end state after its deploy (also the pyinfra CLI path's check): the lockdown
    holds and HAProxy lists every app host as a backend. Raises DeployError naming the LB."""
    verify_lockdown(lb)
    missing = {cfg.name for cfg in app_hosts} - set(haproxy.servers(lb))
    if missing:
        raise DeployError(lb.name, f"HAProxy runs without backends {sorted(missing)}")


def deploy_lb(
    lb: HostConfig, app_hosts: Sequence[HostConfig], options: DeployOptions
) -> HostResult:
    """Deploy HAProxy to ``lb`` in front of ``app_hosts``; the result names host and cause."""
    result = HostResult(host=lb.name, url=lb.url)
    started = time.monotonic()
    try:
        ensure_access(
            lb,
            options.accept_new_host_key,
            result,
            unconfirmed_host_key=options.unconfirmed_host_key,
        )
        run_pyinfra(
            lb,
            lb.own_key,
            result,
            lambda target: (plans.deploy_lb, (lb_plan(target, lb, app_hosts, options),)),
        )
        with timed(result, "verify"):
            verify_lb(lb, app_hosts)
        result.ok = True
    except DeployError as e:
        result.error = e
    except (ConfigError, RuntimeError, OSError) as e:
        result.error = DeployError(lb.name, f"{type(e).__name__}: {e}")
    result.timings["total"] = round(time.monotonic() - started, 3)
    return result


class HAProxyHooks:
    """The rollout's hooks when the inventory has a load balancer (see the module docstring).

    + lb: the load balancer host
    + app_hosts: *every* app host of the inventory, also those not deployed this time: the
      config lists them all, so deploying one host never takes the others out of rotation
    """

    def __init__(self, lb: HostConfig, app_hosts: Sequence[HostConfig]) -> None:
        self.lb = lb
        self.app_hosts = list(app_hosts)
        self.results: list[HostResult] = []

    def start(self, hosts: Sequence[HostConfig], options: DeployOptions) -> None:
        """Deploy the LB host; its outcome is ``results[0]``, never an exception."""
        self.results = [deploy_lb(self.lb, self.app_hosts, options)]

    def _ready(self) -> None:
        if not self.results or not self.results[0].ok:
            cause = self.results[0].error if self.results else "it was not deployed"
            raise DeployError(self.lb.name, f"cannot drain hosts in the load balancer: {cause}")

    def before_batch(self, batch: Sequence[HostConfig]) -> None:
        """Drain each host, then wait (bounded) until its in-flight requests are answered.

        Not when no host outside the batch is UP: draining then would refuse every user, while
        undrained hosts keep requests waiting in their workers' socket through the restart.
        """
        self._ready()
        names = {cfg.name for cfg in batch}
        seen = haproxy.servers(self.lb)
        if not any(s.status == "UP" for name, s in seen.items() if name not in names):
            return
        for cfg in batch:
            haproxy.set_state(self.lb, cfg.name, "drain")
        for cfg in batch:
            try:
                haproxy.wait_for(
                    self.lb, cfg.name, lambda s: s.sessions == 0, DRAIN_TIMEOUT_S, "drained"
                )
            except haproxy.StateTimeout:
                continue  # still answering after the bound: its socket keeps them (see above)

    def after_batch(self, batch: Sequence[HostConfig], results: Sequence[HostResult]) -> None:
        """Put every host back; the ones that serve the release must come UP in HAProxy.

        A failed host goes back too: whatever it serves now (old release after a rollback, or
        nothing), HAProxy's health check decides whether it gets requests.
        """
        self._ready()
        for cfg in batch:
            haproxy.set_state(self.lb, cfg.name, "ready")
        for cfg, result in zip(batch, results, strict=True):
            if result.ok:
                haproxy.wait_for(
                    self.lb, cfg.name, lambda s: s.status == "UP", UP_TIMEOUT_S, "UP in HAProxy"
                )


def hooks_for(inventory: Sequence[HostConfig]) -> HAProxyHooks | None:
    """The hooks for an inventory with a load balancer (None without); one LB host at most."""
    app, lbs = split_inventory(inventory)
    if not lbs:
        return None
    if len(lbs) > 1:
        raise ConfigError(f"one load balancer host is supported, the lb group has {len(lbs)}")
    return HAProxyHooks(lbs[0], app)


def lb_view(hosts: Sequence[HostConfig]) -> dict[str, str]:
    """Each app host's state in HAProxy (UP, DOWN, DRAIN, MAINT; "not in LB" when it is missing),
    for ``mlopsdeploy status``; {} without a load balancer, "LB unreachable" when it cannot say."""
    app, lbs = split_inventory(hosts)
    if not lbs:
        return {}
    try:
        seen = haproxy.servers(lbs[0])
    except DeployError:
        return {cfg.name: "LB unreachable" for cfg in app}
    return {cfg.name: seen[cfg.name].status if cfg.name in seen else "not in LB" for cfg in app}
