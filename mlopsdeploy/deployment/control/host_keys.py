"""The host key we trust, compared in one place for the deploy and the watchdog (control side).

Host keys live in a project known_hosts file, never in the user's ``~/.ssh/known_hosts``. First
contact records the key (trust on first use, like ssh's accept-new); a changed key is refused
unless a person says the VM was re-imaged, because otherwise someone may be intercepting.
"""

from __future__ import annotations

import socket
from enum import StrEnum

import paramiko

from mlopsdeploy.config import HostConfig
from mlopsdeploy.errors import AccessError, HostKeyChangedError

CONNECT_TIMEOUT = 10.0


class HostKey(StrEnum):
    """How the host key the server presented compares with the one recorded for it."""

    RECORDED = "recorded"
    CHANGED = "changed"
    UNRECORDED = "unrecorded"


def known_hosts_entry(cfg: HostConfig) -> str:
    return cfg.address if cfg.ssh_port == 22 else f"[{cfg.address}]:{cfg.ssh_port}"


def connect_transport(cfg: HostConfig, timeout: float = CONNECT_TIMEOUT) -> paramiko.Transport:
    """An SSH transport past the banner and key exchange, not yet logged in.

    Raises ConnectionError naming the address and why (refused, unreachable, no SSH answer).
    """
    where = f"{cfg.address}:{cfg.ssh_port}"
    try:
        sock = socket.create_connection((cfg.address, cfg.ssh_port), timeout=timeout)
    except OSError as e:
        raise ConnectionError(f"{where}: {e.strerror or e}") from e
    transport = paramiko.Transport(sock)
    transport.banner_timeout = timeout
    try:
        transport.start_client(timeout=timeout)
    except (paramiko.SSHException, EOFError, OSError) as e:
        transport.close()
        raise ConnectionError(f"no SSH answer from {where}: {e}") from e
    return transport


def compare_host_key(cfg: HostConfig, key: paramiko.PKey) -> HostKey:
    """``key`` against what the project known_hosts recorded for ``cfg``'s address and port."""
    known = paramiko.HostKeys()
    if cfg.known_hosts.exists():
        known.load(str(cfg.known_hosts))
    recorded = known.lookup(known_hosts_entry(cfg))
    if recorded is None:
        return HostKey.UNRECORDED
    return HostKey.RECORDED if recorded.get(key.get_name()) == key else HostKey.CHANGED


def server_host_key(cfg: HostConfig) -> paramiko.PKey:
    """The host key ``cfg``'s sshd presents now; AccessError when it cannot be reached."""
    try:
        transport = connect_transport(cfg)
    except ConnectionError as e:
        raise AccessError(cfg.name, f"cannot reach {e}") from e
    try:
        return transport.get_remote_server_key()
    finally:
        transport.close()


def check_host_key(cfg: HostConfig, accept_new_host_key: bool = False) -> str:
    """Compare the host's key with the project known_hosts; returns what happened.

    ``"recorded"`` on first contact (trust on first use, like ssh's accept-new), ``"known"`` when
    it matches, ``"replaced"`` when it changed and ``accept_new_host_key`` says the VM was
    re-imaged. A changed key without that flag raises HostKeyChangedError.
    """
    key = server_host_key(cfg)
    match = compare_host_key(cfg, key)
    if match == HostKey.RECORDED:
        return "known"
    entry = known_hosts_entry(cfg)
    if match == HostKey.CHANGED and not accept_new_host_key:
        raise HostKeyChangedError(
            cfg.name,
            f"the SSH host key of {entry} changed (now {key.fingerprint}). If the VM was "
            "re-imaged or wiped, rerun with --accept-new-host-key to trust and record the new "
            f"key; otherwise someone may be intercepting the connection. Recorded in "
            f"{cfg.known_hosts}",
        )
    cfg.known_hosts.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    known = paramiko.HostKeys()
    if cfg.known_hosts.exists():
        known.load(str(cfg.known_hosts))
    if entry in known:
        del known[entry]
    known.add(entry, key.get_name(), key)
    known.save(str(cfg.known_hosts))
    return "recorded" if match == HostKey.UNRECORDED else "replaced"
