"""What a host's sshd offers: ``ssh-audit``'s failures, and the kex a new connection sees.

ssh-audit (the PyPI package) is the yardstick the hardening is held to: its ``[fail]`` verdicts
(NIST curves, SHA-1, weak host keys, known CVEs) are what this returns. Its connection-rate test
is skipped: it opens dozens of connections and would trip a rate limit, not judge the config.
"""

from __future__ import annotations

import json
import socket
import struct
import subprocess
import sys
from typing import Any

SECTIONS = ("kex", "key", "enc", "mac")
KEXINIT = 20


def failures(report: dict[str, Any]) -> list[str]:
    """``<section> <algorithm>: <why>`` for each failed algorithm, plus each CVE, from ``-j``."""
    found = []
    for section in SECTIONS:
        for entry in report.get(section, []):
            for why in entry.get("notes", {}).get("fail", []):
                found.append(f"{section} {entry.get('algorithm')}: {why}")
    for cve in report.get("cves", []):
        found.append(f"cve {cve.get('name')}: {cve.get('description', '')}".rstrip(": "))
    return found


def audit(address: str, port: int, timeout: float = 30) -> list[str]:
    """The failures ssh-audit reports for ``address:port``; RuntimeError when it cannot judge."""
    argv = [sys.executable, "-m", "ssh_audit", "-j", "--skip-rate-test", "-p", str(port), address]
    try:
        run = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired as e:
        raise RuntimeError(f"ssh-audit gave no verdict within {timeout:.0f} s") from e
    try:
        report = json.loads(run.stdout)
    except json.JSONDecodeError as e:
        why = (run.stderr or run.stdout).strip().splitlines()
        raise RuntimeError(
            f"ssh-audit failed: {why[-1] if why else f'exit {run.returncode}'}"
        ) from e
    return failures(report)


def offered_kex(address: str, port: int, timeout: float = 5.0) -> list[str]:
    """The key exchange methods sshd offers a new connection now, read from its KEXINIT.

    After a reload this tells whether the listener already runs the new config: ``systemctl
    reload`` returns once sshd got SIGHUP, and for a moment the old listener still answers.
    Raises OSError (or ValueError for a non-SSH answer) like a failed connection would.
    """
    with socket.create_connection((address, port), timeout=timeout) as sock:
        reader = sock.makefile("rb")
        while not reader.readline().startswith(b"SSH-"):  # lines before the banner are allowed
            pass
        sock.sendall(b"SSH-2.0-mlopsdeploy\r\n")
        length, _padding = struct.unpack(">IB", reader.read(5))
        payload = reader.read(length - 1)
        if not payload or payload[0] != KEXINIT:
            raise ValueError(f"{address}:{port}: no KEXINIT from sshd")
        (size,) = struct.unpack(">I", payload[17:21])  # message byte, 16-byte cookie
        return payload[21 : 21 + size].decode().split(",")
