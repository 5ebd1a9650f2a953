"""Which key logs in, and proof that the shared default key is locked out (control side).

The course hands every team the same default key; other teams are rewarded for getting into VMs
that still accept it. So the deploy uses the user's own key when it works, else bootstraps it
once with the default key, and after the deploy proves the default key is *rejected*.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import paramiko

from mlopsdeploy.config import HostConfig
from mlopsdeploy.deployment.control.host_keys import HostKey, compare_host_key, connect_transport
from mlopsdeploy.errors import AccessError


def ensure_keypair(path: Path) -> Path:
    """Generate an ed25519 keypair at ``path`` once (no passphrase: it is a deploy key)."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "mlopsdeploy", "-f", str(path)],
            check=True,
        )
    return path


def public_key_line(private_key: Path) -> str:
    """``<type> <base64>`` of a private key, derived from the key itself (no .pub needed)."""
    key = paramiko.PKey.from_path(private_key)
    return f"{key.get_name()} {key.get_base64()}"


def try_key(transport: paramiko.Transport, user: str, key_path: Path) -> bool:
    """Whether ``key_path`` authenticates ``user`` on ``transport`` (False when rejected)."""
    try:
        transport.auth_publickey(user, paramiko.PKey.from_path(key_path))
    except paramiko.AuthenticationException:
        return False
    return transport.is_authenticated()


@contextmanager
def checked_transport(cfg: HostConfig) -> Iterator[paramiko.Transport]:
    """An SSH transport to ``cfg`` whose host key is the recorded one, not yet logged in.

    No key is offered to a host that may be an impostor. Raises AccessError for an unreachable
    host, a different host key, or a connection that breaks while in use.
    """
    try:
        transport = connect_transport(cfg)
    except ConnectionError as e:
        raise AccessError(cfg.name, f"cannot log in at {e}") from e
    try:
        if compare_host_key(cfg, transport.get_remote_server_key()) != HostKey.RECORDED:
            raise AccessError(
                cfg.name,
                f"cannot log in at {cfg.address}:{cfg.ssh_port}: its host key is not the one "
                f"recorded in {cfg.known_hosts}",
            )
        yield transport
    except (paramiko.SSHException, OSError, EOFError) as e:
        raise AccessError(cfg.name, f"cannot log in at {cfg.address}:{cfg.ssh_port}: {e}") from e
    finally:
        transport.close()


def key_logs_in(cfg: HostConfig, key_path: Path) -> bool:
    """Whether ``key_path`` authenticates as ``cfg.user`` (False when rejected).

    Only against the recorded host key (call check_host_key first). Unreachable hosts raise
    AccessError.
    """
    with checked_transport(cfg) as transport:
        return try_key(transport, cfg.user, key_path)


def choose_login_key(cfg: HostConfig) -> Path:
    """The key to run the deploy with: the own key, or the default key when a bootstrap is due."""
    if key_logs_in(cfg, cfg.own_key):
        return cfg.own_key
    if cfg.default_key is not None and key_logs_in(cfg, cfg.default_key):
        return cfg.default_key
    tried = f"your key {cfg.own_key}"
    if cfg.default_key is not None:
        tried += f" or the default key {cfg.default_key}"
    raise AccessError(cfg.name, f"neither {tried} is accepted for {cfg.user}@{cfg.address}")


def verify_lockdown(cfg: HostConfig) -> None:
    """Prove the end state: own key logs in, default key is rejected.

    Both on one connection (one handshake instead of two): the default key is offered first and
    must be refused, then the own key must be accepted. A connection that ends logged in is
    also no failed login to the server (OpenSSH's PerSourcePenalties count those).
    """
    with checked_transport(cfg) as transport:
        if cfg.default_key is not None and try_key(transport, cfg.user, cfg.default_key):
            raise AccessError(cfg.name, "the shared default key still logs in after the deploy")
        if not try_key(transport, cfg.user, cfg.own_key):
            raise AccessError(cfg.name, f"your key {cfg.own_key} does not log in after the deploy")
