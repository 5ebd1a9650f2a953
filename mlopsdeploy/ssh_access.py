"""SSH access: the host key we trust, which key logs in, and locking the shared default key out.

The course hands every team the same default key; other teams are rewarded for getting into VMs
that still accept it. So the deploy (1) refuses a host whose host key changed unless told the VM
was re-imaged, (2) uses the user's own key when it works, else bootstraps it once with the default
key, and (3) after the deploy proves the default key is *rejected*. Host keys live in a project
known_hosts file, never in the user's ``~/.ssh/known_hosts``.
"""

from __future__ import annotations

import shlex
import socket
import subprocess
from pathlib import Path

import paramiko
from pyinfra import host
from pyinfra.api import operation

from mlopsdeploy.config import HostConfig
from mlopsdeploy.errors import AccessError, HostKeyChangedError
from mlopsdeploy.facts.ssh import AuthorizedKeys

CONNECT_TIMEOUT = 10.0


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


def key_blob(line: str) -> str:
    """The base64 blob that identifies a key in an authorized_keys line, whatever its options."""
    parts = line.split()
    return next((p for p in parts if p.startswith("AAAA")), "")


def known_hosts_entry(cfg: HostConfig) -> str:
    return cfg.address if cfg.ssh_port == 22 else f"[{cfg.address}]:{cfg.ssh_port}"


def _server_host_key(cfg: HostConfig) -> paramiko.PKey:
    try:
        sock = socket.create_connection((cfg.address, cfg.ssh_port), timeout=CONNECT_TIMEOUT)
    except OSError as e:
        raise AccessError(cfg.name, f"cannot reach {cfg.address}:{cfg.ssh_port}: {e}") from e
    transport = paramiko.Transport(sock)
    try:
        transport.start_client(timeout=CONNECT_TIMEOUT)
        return transport.get_remote_server_key()
    except (paramiko.SSHException, EOFError, OSError) as e:
        raise AccessError(
            cfg.name, f"cannot reach {cfg.address}:{cfg.ssh_port}: no SSH answer ({e})"
        ) from e
    finally:
        transport.close()


def check_host_key(cfg: HostConfig, accept_new_host_key: bool = False) -> str:
    """Compare the host's key with the project known_hosts; returns what happened.

    ``"recorded"`` on first contact (trust on first use, like ssh's accept-new), ``"known"`` when
    it matches, ``"replaced"`` when it changed and ``accept_new_host_key`` says the VM was
    re-imaged. A changed key without that flag raises HostKeyChangedError.
    """
    key = _server_host_key(cfg)
    entry = known_hosts_entry(cfg)
    cfg.known_hosts.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    known = paramiko.HostKeys()
    if cfg.known_hosts.exists():
        known.load(str(cfg.known_hosts))
    recorded = known.lookup(entry)
    if recorded is not None and recorded.get(key.get_name()) == key:
        return "known"
    if recorded is not None and not accept_new_host_key:
        raise HostKeyChangedError(
            cfg.name,
            f"the SSH host key of {entry} changed (now {key.fingerprint}). If the VM was "
            "re-imaged or wiped, rerun with --accept-new-host-key to trust and record the new "
            f"key; otherwise someone may be intercepting the connection. Recorded in "
            f"{cfg.known_hosts}",
        )
    outcome = "recorded" if recorded is None else "replaced"
    if recorded is not None:
        del known[entry]
    known.add(entry, key.get_name(), key)
    known.save(str(cfg.known_hosts))
    return outcome


def key_logs_in(cfg: HostConfig, key_path: Path) -> bool:
    """Whether ``key_path`` authenticates as ``cfg.user`` (False when rejected).

    Host keys are checked against the project known_hosts only (RejectPolicy): call
    check_host_key first. Unreachable hosts raise AccessError.
    """
    client = open_client(cfg, key_path, auth_errors=False)
    if client is None:
        return False
    client.close()
    return True


def open_client(
    cfg: HostConfig, key_path: Path, auth_errors: bool = True
) -> paramiko.SSHClient | None:
    """A paramiko client logged in with ``key_path``; None if rejected and not ``auth_errors``."""
    client = paramiko.SSHClient()
    client.load_host_keys(str(cfg.known_hosts))
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    try:
        client.connect(
            cfg.address,
            port=cfg.ssh_port,
            username=cfg.user,
            pkey=paramiko.PKey.from_path(key_path),
            allow_agent=False,
            look_for_keys=False,
            timeout=CONNECT_TIMEOUT,
            banner_timeout=CONNECT_TIMEOUT,
            auth_timeout=CONNECT_TIMEOUT,
        )
    except paramiko.AuthenticationException as e:
        client.close()
        if auth_errors:
            raise AccessError(cfg.name, f"{key_path} is not accepted for {cfg.user}") from e
        return None
    except (OSError, paramiko.SSHException) as e:
        client.close()
        raise AccessError(cfg.name, f"cannot log in at {cfg.address}:{cfg.ssh_port}: {e}") from e
    return client


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
    """Prove the end state: own key logs in, default key is rejected."""
    if not key_logs_in(cfg, cfg.own_key):
        raise AccessError(cfg.name, f"your key {cfg.own_key} does not log in after the deploy")
    if cfg.default_key is not None and key_logs_in(cfg, cfg.default_key):
        raise AccessError(cfg.name, "the shared default key still logs in after the deploy")


@operation()
def authorized_key(key_line: str, present: bool = True):
    """Add or remove one key in the connecting user's ``~/.ssh/authorized_keys``.

    + key_line: ``<type> <base64> [comment]``; matched by its base64 blob only
    + present: whether the key should be authorized

    **Example:**

    .. code:: python

        authorized_key(name="Lock out the default key", key_line=default_pub, present=False)
    """
    blob = key_blob(key_line)
    if not blob:
        raise ValueError("not a public key line")
    has_key = any(blob in line.split() for line in host.get_fact(AuthorizedKeys))
    if present and not has_key:
        yield (
            "umask 077 && mkdir -p ~/.ssh && chmod 700 ~/.ssh && "
            f"printf '%s\\n' {shlex.quote(key_line)} >> ~/.ssh/authorized_keys"
        )
    elif not present and has_key:
        yield (
            f"umask 077 && {{ grep -vF -- {shlex.quote(blob)} ~/.ssh/authorized_keys || true; }} "
            "> ~/.ssh/authorized_keys.new && mv ~/.ssh/authorized_keys.new ~/.ssh/authorized_keys"
        )
