"""sshd hardening: keys only, no root login, the algorithms ssh-audit's hardening guides keep.

A course VM may come with password logins on, and every stock OpenSSH still offers NIST curves
and SHA-1 MACs that ``ssh-audit`` fails. Changing sshd remotely can lock the user out, so the
change is lockout-safe: the whole previous config is snapshotted, ``sshd -t`` validates the new
one, ``sshd -T`` proves it is in effect, a revert timer is armed on the host, sshd is *reloaded*
(the deploy's own session survives) and a *new* login with the user's key must succeed before the
deploy goes on. Otherwise the snapshot is put back and reloaded, and the deploy fails naming why.
"""

from __future__ import annotations

import shlex
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass

from pyinfra import host as current_host
from pyinfra import logger
from pyinfra.api import FunctionCommand, Host, State, operation

from mlopsdeploy.config import HostConfig
from mlopsdeploy.deployment.control import ssh_audit
from mlopsdeploy.deployment.control.ssh_login import key_logs_in
from mlopsdeploy.deployment.control.sshd_policy import (
    ENFORCED,
    KEX_MARKERS,
    hardening_settings,
    render_hardening,
)
from mlopsdeploy.deployment.facts.sshd import (
    BLOCK_BEGIN,
    BLOCK_END,
    DROP_IN,
    DROP_IN_DIR,
    SSHD_CONFIG,
    Sshd,
    SshdSetup,
)
from mlopsdeploy.deployment.operations.gate import GateRecord
from mlopsdeploy.errors import AccessError, DeployError

SNAPSHOT = "/etc/ssh/.mlopsdeploy-sshd-previous.tar"
REVERT_UNIT = "mlopsdeploy-sshd-revert"
REVERT_AFTER_SECONDS = 120
LOGIN_PROOF_SECONDS = 15.0


def _normalized(text: str | None) -> list[str]:
    return [line.strip() for line in (text or "").strip().splitlines()]


def write_command(setup: SshdSetup, content: str) -> str:
    """Snapshot the whole sshd config, then put ``content`` in place (as root)."""
    dirs = "sshd_config" + (" sshd_config.d" if setup.include_dir else "")
    snapshot = f"tar -C /etc/ssh -cpf {SNAPSHOT} {dirs}"
    text = shlex.quote(content)
    if setup.include_dir:
        write = f"umask 022 && mkdir -p {DROP_IN_DIR} && printf '%s' {text} > {DROP_IN}"
    else:
        new = f"{SSHD_CONFIG}.mlopsdeploy-new"
        write = (
            f"{{ printf '%s' {text}; sed '/^{BLOCK_BEGIN}$/,/^{BLOCK_END}$/d' {SSHD_CONFIG}; }} "
            f"> {new} && cat {new} > {SSHD_CONFIG} && rm -f {new}"
        )
    return f"{snapshot} && {write}"


def restore_command(setup: SshdSetup) -> str:
    """Put the snapshot back exactly: files added since (by anyone) go, changed ones revert."""
    clear = f"rm -rf {DROP_IN_DIR} && " if setup.include_dir else ""
    return f"{clear}tar -C /etc/ssh -xpf {SNAPSHOT}"


# Reload, never restart: sshd re-reads its config and open sessions (the deploy's) live on.
_RELOAD = "systemctl reload {unit}"


def reload_command(unit: str) -> str:
    """The reload that makes the hardened config live. Its own function, used for nothing
    else (the revert paths use ``_RELOAD``): a test injects a config between validation and it.
    """
    return _RELOAD.format(unit=shlex.quote(unit))


def arm_revert_command(setup: SshdSetup, unit: str) -> str:
    """A timer on the host that restores and reloads unless the deploy disarms it: the last
    resort when the control machine loses its session between the reload and the proof."""
    action = shlex.quote(f"{restore_command(setup)} && {_RELOAD.format(unit=shlex.quote(unit))}")
    return (
        f"{disarm_revert_command()}; systemd-run --quiet --unit={REVERT_UNIT} "
        f"--on-active={REVERT_AFTER_SECONDS} /bin/sh -c {action}"
    )


def disarm_revert_command() -> str:
    return (
        f"systemctl stop {REVERT_UNIT}.timer 2>/dev/null; "
        f"systemctl reset-failed {REVERT_UNIT}.service {REVERT_UNIT}.timer 2>/dev/null; true"
    )


def overridden(settings: dict[str, str], effective: list[str]) -> list[str]:
    """``keyword value`` lines of ``sshd -T`` that differ from the hardening (another file won)."""
    wanted = {key.lower(): value for key, value in settings.items()}
    wrong = []
    for line in effective:
        key, _, value = line.strip().partition(" ")
        if key in ENFORCED and key in wanted and value != wanted[key]:
            wrong.append(f"{key} {value}")
    return wrong


@dataclass(frozen=True)
class Hardening:
    """One host's pending sshd change: what to write, how to undo it, where failures go."""

    cfg: HostConfig
    setup: SshdSetup
    content: str
    record: GateRecord


def _as_root(target: Host, command: str) -> tuple[bool, str]:
    ok, output = target.run_shell_command(f"sudo -n sh -c {shlex.quote(command)}")
    return ok, output.stderr.strip() or output.stdout.strip()


def _revert(target: Host, change: Hardening, cause: str, reload: bool) -> bool:
    """Restore the snapshot (and reload when the new config was live); record the failure.

    After a reload the message also says whether a new login with the own key works again.
    """
    unit = change.setup.unit or "ssh.service"
    reload_line = _RELOAD.format(unit=shlex.quote(unit))
    undo = restore_command(change.setup) + (f" && {reload_line}" if reload else "")
    ok, output = _as_root(target, f"{undo} && rm -f {SNAPSHOT}; {disarm_revert_command()}")
    outcome = "the previous sshd config was restored" + (" and reloaded" if reload else "")
    if not ok:
        outcome = f"restoring the previous sshd config FAILED too ({output})"
    elif reload:
        kex = hardening_settings(change.setup)["KexAlgorithms"].split(",")
        _until_offered(change.cfg, lambda offered: offered != set(kex))
        back, why = new_login(change.cfg, retry_rejected=True)
        outcome += "; your key logs in again" if back else f"; and still {why}"
    error = DeployError(change.cfg.name, f"sshd hardening reverted: {cause}; {outcome}")
    change.record.failure = error
    target.log_styled(str(error), fg="red", log_func=logger.error)
    return False


def _until_offered(
    cfg: HostConfig, live: Callable[[set[str]], bool], timeout: float = LOGIN_PROOF_SECONDS
) -> bool:
    """Wait until a new connection's offered kex satisfies ``live``: the reloaded config is in
    charge (``systemctl reload`` returns when sshd got SIGHUP, not when it re-executed)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            offered = ssh_audit.offered_kex(cfg.address, cfg.ssh_port)
            if live({name for name in offered if not name.startswith(KEX_MARKERS)}):
                return True
        except (OSError, ValueError, struct.error):
            pass  # the listener is re-executing
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.1)


def new_login(
    cfg: HostConfig, timeout: float = LOGIN_PROOF_SECONDS, retry_rejected: bool = False
) -> tuple[bool, str]:
    """Whether a *new* connection logs in with the own key, and if not, why.

    sshd re-executes its listener on reload, so a connection in that instant may be refused:
    such failures are retried until ``timeout``; a rejected key is final unless
    ``retry_rejected`` (after a revert, the old listener may still answer for a moment).
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            if key_logs_in(cfg, cfg.own_key):
                return True, ""
            why = f"a new SSH login with your key {cfg.own_key} was refused"
            if not retry_rejected or time.monotonic() >= deadline:
                return False, why
        except AccessError as e:
            if time.monotonic() >= deadline:
                return False, f"a new SSH login with your key {cfg.own_key} failed: {e.cause}"
        time.sleep(0.2)


def apply_hardening(state: State, host: Host, change: Hardening) -> bool:
    """Write, validate, check it is in effect, reload, then prove a new login with the own key."""
    unit = change.setup.unit or "ssh.service"
    ok, output = _as_root(host, write_command(change.setup, change.content))
    if not ok:
        return _revert(host, change, f"writing the config failed ({output})", reload=False)
    ok, output = _as_root(host, "sshd -t")
    if not ok:
        return _revert(host, change, f"sshd -t refused the config ({output})", reload=False)
    ok, output = _as_root(host, "sshd -T")
    wrong = overridden(hardening_settings(change.setup), output.splitlines()) if ok else []
    if not ok or wrong:
        cause = f"another sshd setting overrides it ({', '.join(wrong) or output})"
        return _revert(host, change, cause, reload=False)
    ok, output = _as_root(
        host, f"{arm_revert_command(change.setup, unit)} && {reload_command(unit)}"
    )
    if not ok:
        return _revert(host, change, f"reloading {unit} failed ({output})", reload=True)
    kex = set(hardening_settings(change.setup)["KexAlgorithms"].split(","))
    if not _until_offered(change.cfg, lambda offered: offered == kex):
        cause = f"sshd did not offer the new key exchange within {LOGIN_PROOF_SECONDS:.0f} s"
        return _revert(host, change, cause, reload=True)
    logged_in, cause = new_login(change.cfg)
    if not logged_in:
        return _revert(host, change, f"after reloading sshd, {cause}", reload=True)
    _as_root(host, f"{disarm_revert_command()}; rm -f {SNAPSHOT}")
    return True


@operation()
def sshd_hardened(cfg: HostConfig, record: GateRecord):
    """Harden sshd where the user has sudo; nothing when ``cfg.harden_sshd`` is off or it is done.

    + cfg: the host; ``harden_sshd`` and ``own_key`` (the key that must still log in) matter
    + record: where a refused or reverted change leaves its cause

    **Example:**

    .. code:: python

        sshd_hardened(name="sshd hardening", cfg=cfg, record=GateRecord())
    """
    if not cfg.harden_sshd:
        return
    setup = current_host.get_fact(Sshd)
    if setup is None or not setup.sudo:
        return
    try:
        content = render_hardening(setup)
    except ValueError as e:
        raise DeployError(cfg.name, f"sshd hardening impossible: {e}") from e
    if _normalized(content) == _normalized(setup.managed):
        return
    yield FunctionCommand(apply_hardening, (Hardening(cfg, setup, content, record),), {})
