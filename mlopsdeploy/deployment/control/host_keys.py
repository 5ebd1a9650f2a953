"""The host key we trust, compared in one place for the deploy and the watchdog (control side).

Host keys live in a project known_hosts file, never in the user's ``~/.ssh/known_hosts``. First
contact records the key (trust on first use, like ssh's accept-new); a changed key is refused
unless a person says the VM was re-imaged, because otherwise someone may be intercepting.
"""

from __future__ import annotations

import fcntl
import os
import socket
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from enum import StrEnum
from pathlib import Path

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
    record_host_key(cfg, key)
    return "recorded" if match == HostKey.UNRECORDED else "replaced"


@contextmanager
def _editing(path: Path) -> Iterator[paramiko.HostKeys]:
    """The known_hosts at ``path``, loaded under an exclusive flock and saved atomically.

    Serialized (``<path>.lock``) because the watchdog's threads and a manual deploy may record
    keys at once and a read-edit-write would lose one of them; atomic (a temp file renamed over
    it) because pyinfra and paramiko read the file meanwhile and must never see it truncated.
    """
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    with open(path.with_name(f"{path.name}.lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        known = paramiko.HostKeys()
        if path.exists():
            known.load(str(path))
        yield known
        fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
        try:
            os.close(fd)
            known.save(temp)
            os.replace(temp, path)
        finally:
            with suppress(FileNotFoundError):
                os.unlink(temp)


def record_host_key(cfg: HostConfig, key: paramiko.PKey) -> None:
    """Record ``key`` as the one host key of ``cfg``'s address and port, replacing older ones."""
    entry = known_hosts_entry(cfg)
    with _editing(cfg.known_hosts) as known:
        if entry in known:
            del known[entry]
        known.add(entry, key.get_name(), key)
