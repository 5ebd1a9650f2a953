"""Diagnose a host from outside over one SSH connection, and run a command as its owner.

One paramiko Transport answers every question in order - TCP and banner, the host key against the
project known_hosts, our key then the default key, and (logged in with our key) the unit's state
- so a diagnosis costs one connection and a couple of seconds at most. Authenticating against a
host whose key changed is safe: a public-key signature is bound to that one session and reveals
nothing secret; it is what tells a re-imaged VM (default key accepted) from an impostor.
"""

from __future__ import annotations

import paramiko

from mlopsdeploy.config import HostConfig
from mlopsdeploy.deployment.control.host_keys import HostKey, compare_host_key, connect_transport
from mlopsdeploy.deployment.control.ssh_login import try_key
from mlopsdeploy.deployment.facts.service import WorkerProcesses
from mlopsdeploy.deployment.operations.workers import serving_units
from mlopsdeploy.watchdog.diagnosis import Diagnosis, LoginKey
from mlopsdeploy.watchdog.probe import app_spec_for


class RemoteError(RuntimeError):
    """A command on the host could not be run or failed; the message says which and why."""


def diagnose(cfg: HostConfig, timeout_s: float = 5.0) -> Diagnosis:
    """What is wrong with `cfg`'s host, as far as one SSH connection shows; never raises."""
    try:
        transport = _connect(cfg, timeout_s)
    except RemoteError as exc:
        return Diagnosis(ssh_banner=None, error=str(exc))
    banner = transport.remote_version
    try:
        host_key = compare_host_key(cfg, transport.get_remote_server_key())
        try:
            login = _log_in(transport, cfg)
        except (paramiko.SSHException, OSError, EOFError) as exc:
            return Diagnosis(banner, host_key, error=f"login failed: {type(exc).__name__}: {exc}")
        if login != LoginKey.OWN:
            return Diagnosis(banner, host_key, login)
        fact = WorkerProcesses()
        units = tuple(serving_units(cfg, app_spec_for(cfg)))
        try:
            lines = _exec(transport, fact.command(units, cfg.service_scope), timeout_s)
        except RemoteError as exc:
            return Diagnosis(banner, host_key, login, error=str(exc))
        states = fact.process(lines)
        worst = next((state for state in states if not state.serving), None)
        worst = worst or (states[0] if states else None)
        return Diagnosis(banner, host_key, login, worst, workers=states)
    finally:
        transport.close()


def run_as_owner(cfg: HostConfig, command: str, timeout_s: float) -> list[str]:
    """Run `command` logged in with the user's own key (host key checked); its stdout lines."""
    transport = _connect(cfg, timeout_s)
    try:
        if compare_host_key(cfg, transport.get_remote_server_key()) == HostKey.CHANGED:
            raise RemoteError("host key changed; not running commands on it")
        if not try_key(transport, cfg.user, cfg.own_key):
            raise RemoteError(f"{cfg.own_key} is not accepted")
        return _exec(transport, command, timeout_s)
    finally:
        transport.close()


def _connect(cfg: HostConfig, timeout_s: float) -> paramiko.Transport:
    try:
        return connect_transport(cfg, timeout_s)
    except ConnectionError as exc:
        raise RemoteError(str(exc)) from exc


def _log_in(transport: paramiko.Transport, cfg: HostConfig) -> LoginKey:
    if try_key(transport, cfg.user, cfg.own_key):
        return LoginKey.OWN
    if cfg.default_key is not None and try_key(transport, cfg.user, cfg.default_key):
        return LoginKey.DEFAULT
    return LoginKey.NONE


def _exec(transport: paramiko.Transport, command: str, timeout_s: float) -> list[str]:
    try:
        channel = transport.open_session(timeout=timeout_s)
        channel.settimeout(timeout_s)
        channel.exec_command(command)
        out = channel.makefile("r").read().decode(errors="replace")
        status = channel.recv_exit_status()
    except (paramiko.SSHException, OSError) as exc:
        raise RemoteError(f"command failed to run: {type(exc).__name__}: {exc}") from exc
    if status != 0:
        raise RemoteError(f"command exited {status}: {out.strip()[-200:]}")
    return out.splitlines()
