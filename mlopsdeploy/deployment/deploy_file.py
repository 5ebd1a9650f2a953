"""What ``pyinfra inventory.py deploys/main.py`` runs per host: what ``mlopsdeploy deploy`` runs.

``inventory.py`` settles SSH access before pyinfra connects (host key checked, own key
bootstrapped with the default key). Then, for each host of the inventory, this takes the host
lock (held until the run ends, as the library holds it), prepares the plan on the control
machine (lock and wheelhouse for the host's Python, token), adds the same ``@deploy`` the library
runs, and last the library's own check of the end state: the lockdown holds and the app answers
its canaries, and with a load balancer in the inventory, HAProxy sees the host UP again. A host
that cannot be prepared is failed alone, naming the cause, before any of its operations runs;
the other hosts go on.

What differs from ``mlopsdeploy deploy``, and why (docs/fleet.md): pyinfra's CLI runs each
operation across every host at once, so the whole inventory is one batch; ``[rollout]`` batches,
``max_fail`` and ``--rollback-failed`` need the deploy to stop between batches, which only the
library's rollout does (``rollout_note`` says so when hosts.toml asks for batches). With one
batch the library drains nobody either (a batch holding every host is not drained). pyinfra
orders each host's operations and runs them level by level across the hosts, so the LB host's
few operations run alongside the app hosts' first ones rather than before them (the library
deploys the LB first); HAProxy is in place long before an app host's final check waits for it,
and a failed LB fails that check on the app hosts (the library then deploys no app host).
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import ExitStack
from functools import cache
from pathlib import Path

import pyinfra
from pyinfra import logger
from pyinfra.api import FunctionCommand, Host, State, operation
from pyinfra.api.state import StateStage

from mlopsdeploy.config import ConfigError, HostConfig
from mlopsdeploy.deployment import lb, plans
from mlopsdeploy.deployment.api import Runtimes, make_plan, verify_served
from mlopsdeploy.deployment.control import haproxy
from mlopsdeploy.deployment.control.appspec import AppSpec, AppSpecError
from mlopsdeploy.deployment.control.bundle import ReleaseBundle, build_release
from mlopsdeploy.deployment.control.host_lock import hold_lock
from mlopsdeploy.deployment.control.probe import Canary
from mlopsdeploy.deployment.results import DeployOptions
from mlopsdeploy.deployment.rollout import BatchSize, split
from mlopsdeploy.errors import DeployError

# Host name -> its lock, open until the process ends: the deploy file is planned first and its
# operations run afterwards, so nothing local to the planning may hold it.
_LOCKS: dict[str, ExitStack] = {}
#: The dependency lock per host Python, shared by every host of the run (pyinfra's CLI plans
#: the hosts one after another in its main greenlet, never in threads).
_RUNTIMES = Runtimes()


@cache
def _bundle(app_dir: Path, model_dir: Path, cache_dir: Path) -> ReleaseBundle:
    """One release bundle per app for the whole run, however many hosts get it."""
    return build_release(app_dir, model_dir, cache_dir)


def _fail(state: State, host: Host, error: DeployError) -> bool:
    host.log_styled(str(error), fg="red", log_func=logger.error)
    return False


@operation(is_idempotent=False)
def serving_checked(
    cfg: HostConfig,
    canaries: Sequence[Canary],
    timeout: float,
    spec: AppSpec | None = None,
    balancer: HostConfig | None = None,
):
    """The library's final check once the deploy ran: lockdown holds, the app answers right,
    and the load balancer, if any, has the host UP again (as the rollout's ``after_batch``).

    A check, not a change: it sends nothing when it passes, so a no-op run reports no change.

    + cfg: the host's configuration
    + canaries: what the release must answer (its manifest's)
    + timeout: seconds the app gets to answer
    + spec: the app's spec (None: the bundled app)
    + balancer: the inventory's load balancer host (None: there is none)
    """
    if pyinfra.state.current_stage is not StateStage.Execute:
        return  # pyinfra's change detection plans every operation before any has run
    try:
        verify_served(cfg, canaries, timeout, spec)
        if balancer is not None:
            up = lambda s: s.status == "UP"  # noqa: E731
            haproxy.wait_for(balancer, cfg.name, up, lb.UP_TIMEOUT_S, "UP in HAProxy")
    except DeployError as e:
        yield FunctionCommand(_fail, (e,), {})


@operation(is_idempotent=False)
def lb_checked(cfg: HostConfig, app_hosts: Sequence[HostConfig]):
    """The load balancer's check after its deploy (``lb.verify_lb``); no change when it passes.

    + cfg: the load balancer host
    + app_hosts: the app hosts it must list as backends
    """
    if pyinfra.state.current_stage is not StateStage.Execute:
        return
    try:
        lb.verify_lb(cfg, app_hosts)
    except DeployError as e:
        yield FunctionCommand(_fail, (e,), {})


def _inventory(target: Host) -> tuple[list[HostConfig], list[HostConfig]]:
    """(app hosts, load balancer hosts) of the running pyinfra inventory."""
    configured = [h.data.get("mlopsdeploy") for h in target.state.inventory]
    return lb.split_inventory([cfg for cfg in configured if cfg is not None])


def rollout_note(app_hosts: Sequence[HostConfig], batches: Sequence[BatchSize]) -> str | None:
    """What to tell a user whose ``[rollout]`` asks for batches the pyinfra CLI cannot run."""
    if len(split(app_hosts, batches)) <= 1:
        return None
    return (
        f"note: hosts.toml's [rollout] batches {list(batches)} are not applied here: pyinfra runs "
        "each operation across every host at once, so all app hosts form one batch (each still "
        "gated on its own); `mlopsdeploy deploy` runs the rolling release"
    )


def deploy_host(target: Host, options: DeployOptions) -> None:
    """Plan ``target``'s whole deploy in the running pyinfra CLI (call from a deploy file)."""
    cfg: HostConfig = target.data.mlopsdeploy
    try:
        held = _LOCKS.setdefault(cfg.name, ExitStack())
        held.enter_context(hold_lock(target, cfg))
        app_hosts, balancers = _inventory(target)
        if lb.LB_GROUP in cfg.groups:
            plans.deploy_lb(plan=lb.lb_plan(target, cfg, app_hosts, options))
            lb_checked(name="Verify lockdown and backends", cfg=cfg, app_hosts=app_hosts)
            return
        bundle = _bundle(cfg.app_dir or options.app_dir, options.model_dir, options.cache_dir)
        plans.deploy_app(plan=make_plan(target, cfg, bundle, options, runtimes=_RUNTIMES))
    except (ConfigError, AppSpecError, RuntimeError, OSError) as e:
        # The library's per-host errors (DeployError is a RuntimeError), reported the same way.
        error = (
            e if isinstance(e, DeployError) else DeployError(cfg.name, f"{type(e).__name__}: {e}")
        )
        target.log_styled(str(error), fg="red", log_func=logger.error)
        _LOCKS.pop(cfg.name).close()
        # Failed while planned, so none of its operations runs (pyinfra skips failed hosts).
        target.state.fail_hosts({target})
        return
    serving_checked(
        name="Verify lockdown and serving",
        cfg=cfg,
        canaries=bundle.canaries,
        timeout=options.gate_timeout,
        spec=bundle.spec,
        balancer=balancers[0] if balancers else None,
    )
