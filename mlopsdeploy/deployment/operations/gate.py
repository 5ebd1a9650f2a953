"""Gate operations: a release may serve only after it answered the health probe correctly.

With a release already serving, the new one first runs as a *candidate* (its own unit, loopback
port, probed through the deploy's SSH connection) and ``current`` is switched only if it passes.
A new lock's venv is gated the same way: the candidate runs on it (``candidate-venv``), and the
workers' ``venv`` link moves only after the gate passed. Without a serving release (a cold host)
there is nothing to protect, so the release is started directly and verified; a failure there
removes it again. Either way a refused release never stays current, nor its venv serving.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field

import paramiko
from pyinfra import logger
from pyinfra.api import FunctionCommand, Host, State, operation
from pyinfra.api.operation import OperationMeta

from mlopsdeploy.config import HostConfig
from mlopsdeploy.deployment.control.bundle import ReleaseBundle
from mlopsdeploy.deployment.control.port_forward import forwarded_port
from mlopsdeploy.deployment.control.probe import ProbeResult, wait_healthy
from mlopsdeploy.deployment.facts.release import Releases
from mlopsdeploy.deployment.host_commands import swap_link, systemctl
from mlopsdeploy.deployment.operations import workers
from mlopsdeploy.deployment.operations.runtime import candidate_venv_command, serve_venv_command
from mlopsdeploy.deployment.operations.service import CANDIDATE_UNIT, UNIT, journal_tail
from mlopsdeploy.deployment.operations.workers import Rollout
from mlopsdeploy.errors import DeployError

#: What running a command raises once the deploy's SSH session is gone.
SESSION_LOST = (paramiko.SSHException, EOFError, OSError)


@dataclass
class GateRecord:
    """Where gate callbacks leave their verdicts for the caller (pyinfra only keeps a bool)."""

    failure: DeployError | None = None
    probes: list[ProbeResult] = field(default_factory=list)
    rollout: Rollout = field(default_factory=Rollout)


@dataclass(frozen=True)
class Gate:
    """One release's gate on one host: what to probe, for how long, where the verdict goes.

    + venv: lock hash of the venv the release runs on (``venvs/<venv>``)
    + restore_venv: the venv that served before this run moved the ``venv`` link off it (None:
      the link did not move), which a failed verification points it back at
    + new_release: this run made ``bundle`` current (False: only the venv or a repair changed)
    """

    cfg: HostConfig
    bundle: ReleaseBundle
    timeout: float
    record: GateRecord
    venv: str
    restore_venv: str | None = None
    new_release: bool = True


def _refuse(target: Host, record: GateRecord, error: DeployError) -> bool:
    record.failure = error
    target.log_styled(str(error), fg="red", log_func=logger.error)
    return False


def check_candidate(state: State, host: Host, gate: Gate) -> bool:
    """Probe the candidate through an SSH port forward, then stop it whatever the verdict."""
    cfg, bundle, record = gate.cfg, gate.bundle, gate.record
    stop = f"{systemctl(cfg.service_scope)} stop {CANDIDATE_UNIT}"
    transport = host.connector.client.get_transport()  # type: ignore[attr-defined]
    try:
        with forwarded_port(transport, cfg.probe_port) as port:
            result = wait_healthy(
                f"http://127.0.0.1:{port}", bundle.canaries, gate.timeout, spec=bundle.spec
            )
    except BaseException:
        host.run_shell_command(stop)
        raise
    record.probes.append(result)
    if result.ok:
        host.run_shell_command(stop)
        return True
    return _refuse(
        host,
        record,
        DeployError(
            cfg.name,
            f"release {bundle.id} (model {bundle.model_version}) refused by the health gate: "
            f"{result.cause}; the serving release was left untouched",
            _refused_candidate_evidence(host, cfg, stop),
        ),
    )


def _refused_candidate_evidence(host: Host, cfg: HostConfig, stop: str) -> list[str]:
    """The refused candidate's last journal lines, read before ``stop`` stops it.

    The verdict is already in, so an SSH session lost meanwhile (a busy control machine or VM)
    must not turn the refusal into a bare failed step: what could not be done is said in a line
    instead. A candidate left running listens on loopback only, and the next deploy restarts it.
    """
    try:
        evidence = journal_tail(host, cfg, CANDIDATE_UNIT)
    except SESSION_LOST as e:
        evidence = [f"(journal not read: {type(e).__name__}: {e})"]
    try:
        host.run_shell_command(stop)
    except SESSION_LOST as e:
        evidence.append(f"({CANDIDATE_UNIT} not stopped: {type(e).__name__}: {e})")
    return evidence


def check_serving(state: State, host: Host, gate: Gate) -> bool:
    """Probe the public app port; on failure put the previous release and venv back (or stop).

    With workers, a worker that did not become ready during the roll is the failure itself (no
    probe needed), and only the workers the roll reached are restarted back onto the previous
    release: the others never left it.
    """
    cfg, bundle, record = gate.cfg, gate.bundle, gate.record
    rollout = record.rollout
    if rollout.failed:
        cause = f"worker {rollout.failed} did not become ready"
        journal = rollout.journal
    else:
        result = wait_healthy(cfg.url, bundle.canaries, gate.timeout, spec=bundle.spec)
        record.probes.append(result)
        if result.ok:
            return True
        cause = result.cause
        journal = journal_tail(host, cfg, rollout.restarted[-1] if rollout.restarted else UNIT)
    index = host.get_fact(Releases, base=cfg.base_dir)
    ctl = systemctl(cfg.service_scope)
    base = cfg.base_dir
    socket_layout = workers.serves_socket(bundle.spec)
    reached = [*rollout.restarted, *([rollout.failed] if rollout.failed else [])]
    back = [serve_venv_command(cfg, gate.restore_venv)] if gate.restore_venv else []
    if gate.restore_venv and not gate.new_release:
        _restart_reached(host, cfg, socket_layout, back, reached)
        outcome = f"the app went back to the venv of lock {gate.restore_venv}"
    elif index.previous and index.previous != bundle.id:
        _restart_reached(
            host, cfg, socket_layout, [*back, swap_link(base, "current", index.previous)], reached
        )
        outcome = f"switched back to release {index.previous}"
    else:
        units = f"{workers.SOCKET} {workers.TARGET} '{workers.PREFIX}@*'" if socket_layout else UNIT
        host.run_shell_command(f"{ctl} stop {units}; rm -f {shlex.quote(base)}/current")
        outcome = "no earlier release to serve, so the service was stopped"
    return _refuse(
        host,
        record,
        DeployError(
            cfg.name,
            f"release {bundle.id} failed on {cfg.url}: {cause}; {outcome}",
            journal,
        ),
    )


def _restart_reached(
    target: Host, cfg: HostConfig, socket_layout: bool, switch: list[str], reached: list[str]
) -> None:
    """Run the ``switch`` commands (links back), then restart what the failed roll reached:
    only the workers it restarted (the others never left), or the single unit."""
    if socket_layout:
        target.run_shell_command(" && ".join(switch))
        workers.restart_in_turn(target, cfg, reached, workers.Rollout())
    else:
        target.run_shell_command(
            " && ".join([*switch, f"{systemctl(cfg.service_scope)} restart {UNIT}"])
        )


@operation(is_idempotent=False)
def candidate_gated(gate: Gate):
    """Start the release as the candidate unit and probe it; fails the deploy if it is unhealthy.

    + gate: the host, the staged release, the timeout, and where the verdict goes
    """
    yield swap_link(gate.cfg.base_dir, "candidate", gate.bundle.id)
    yield candidate_venv_command(gate.cfg, gate.venv)
    yield f"{systemctl(gate.cfg.service_scope)} restart {CANDIDATE_UNIT}"
    yield FunctionCommand(check_candidate, (gate,), {})


@operation()
def serving_verified(gate: Gate, after: OperationMeta):
    """Probe the app port if ``after`` (re)started the app; revert to the previous release if bad.

    + gate: the host, the release now current, the timeout, and where the verdict goes
    + after: the service operation; nothing to verify when it left the app running untouched
    """
    if after.is_complete() and after.did_change():
        yield FunctionCommand(check_serving, (gate,), {})
