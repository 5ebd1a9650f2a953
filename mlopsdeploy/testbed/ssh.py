"""Talking to a machine the way a user does: OpenSSH with explicit key and host-key files.

Tests never touch ~/.ssh: each machine has its own known_hosts file, filled by the testbed from
the host keys the guest generated at first boot (read from its disk, the way a cloud console
shows a new VM's fingerprints). Host keys are therefore checked strictly, and a wiped machine's
new keys are trusted only after the testbed has re-read them.
"""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path

#: Options for every connection: no agent, no other keys, no prompts, no global known_hosts.
BASE_OPTIONS = (
    "BatchMode=yes",
    "IdentitiesOnly=yes",
    "IdentityAgent=none",
    "StrictHostKeyChecking=yes",
    "GlobalKnownHostsFile=/dev/null",
    "ConnectTimeout=5",
    "LogLevel=ERROR",
)


def ssh_argv(
    address: str,
    user: str,
    key: Path,
    known_hosts: Path,
    port: int = 22,
    command: str | None = None,
    tty: bool = False,
) -> list[str]:
    """The ssh command line for `user@address` with exactly `key` and `known_hosts`."""
    argv = ["ssh", "-p", str(port), "-i", str(key), "-o", f"UserKnownHostsFile={known_hosts}"]
    for option in BASE_OPTIONS:
        argv += ["-o", option]
    argv.append("-t" if tty else "-T")
    argv.append(f"{user}@{address}")
    if command is not None:
        argv += ["--", command]
    return argv


def known_hosts_lines(address: str, port: int, rootfs: Path) -> list[str]:
    """known_hosts entries for the host keys stored in a guest's /etc/ssh."""
    host = address if port == 22 else f"[{address}]:{port}"
    lines = []
    for pub in sorted((rootfs / "etc" / "ssh").glob("ssh_host_*_key.pub")):
        key_type, blob = pub.read_text().split()[:2]
        lines.append(f"{host} {key_type} {blob}")
    return lines


def banner(address: str, port: int, timeout: float) -> str | None:
    """The SSH identification string the server sends, or None if it does not (yet)."""
    try:
        with socket.create_connection((address, port), timeout=timeout) as conn:
            conn.settimeout(timeout)
            data = conn.recv(256)
    except OSError:
        return None
    line = data.split(b"\r\n")[0].decode(errors="replace")
    return line if line.startswith("SSH-") else None


def served_host_key_fingerprint(address: str, port: int, key_type: str = "ed25519") -> str:
    """SHA256 fingerprint of the host key sshd presents over the network right now."""
    scan = subprocess.run(
        ["ssh-keyscan", "-T", "5", "-p", str(port), "-t", key_type, address],
        capture_output=True,
        text=True,
        check=False,
    )
    lines = [line for line in scan.stdout.splitlines() if line and not line.startswith("#")]
    if not lines:
        raise RuntimeError(f"ssh-keyscan got no {key_type} key from {address}: {scan.stderr}")
    fp = subprocess.run(
        ["ssh-keygen", "-l", "-f", "-"], input=lines[0], capture_output=True, text=True, check=True
    )
    return fp.stdout.split()[1]
