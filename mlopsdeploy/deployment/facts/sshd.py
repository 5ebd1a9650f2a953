"""Facts about the host's sshd that the hardening operation needs before it writes anything.

The hardened algorithm lists depend on what *this* OpenSSH build supports (``ssh -Q``) and which
host keys exist: a name sshd does not know makes ``sshd -t`` fail, and hiding the host key the
user recorded would look like an impostor on the next connection.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from pyinfra.api import FactBase

SSHD_CONFIG = "/etc/ssh/sshd_config"
DROP_IN_DIR = "/etc/ssh/sshd_config.d"
# Sorted before any other drop-in: sshd keeps the first value it reads for each keyword.
DROP_IN = f"{DROP_IN_DIR}/00-mlopsdeploy-hardening.conf"
BLOCK_BEGIN = "# BEGIN mlopsdeploy sshd hardening"
BLOCK_END = "# END mlopsdeploy sshd hardening"
_QUERIES = ("kex", "cipher", "mac", "HostKeyAlgorithms")


@dataclass(frozen=True)
class SshdSetup:
    """What the host's sshd is and supports, and the hardening it carries now.

    + version: OpenSSH's (major, minor), e.g. (9, 2)
    + sudo: whether the user may run ``sudo -n`` (the hardening needs root)
    + unit: the systemd unit serving sshd (``ssh.service`` on Debian), None when none is active
    + include_dir: the main config includes ``sshd_config.d/*.conf`` before its own settings
    + supported: ``ssh -Q`` answers: kex, cipher, mac, HostKeyAlgorithms
    + host_keys: host key type (``ED25519``, ``RSA``, ...) -> bits
    + managed: the hardening text in place now (drop-in or managed block), None when absent
    """

    version: tuple[int, int]
    sudo: bool
    unit: str | None
    include_dir: bool
    supported: dict[str, list[str]] = field(default_factory=dict)
    host_keys: dict[str, int] = field(default_factory=dict)
    managed: str | None = None


class Sshd(FactBase[SshdSetup | None]):
    """The host's sshd: version, sudo, unit, include, supported algorithms, host keys, hardening.

    None when no OpenSSH is installed.
    """

    def command(self) -> str:
        queries = "; ".join(f"echo \"Q {q} $(ssh -Q {q} | tr '\\n' ' ')\"" for q in _QUERIES)
        return (
            "command -v sshd >/dev/null || [ -x /usr/sbin/sshd ] || exit 0; "
            'echo "version $(ssh -V 2>&1)"; '
            'if sudo -n true 2>/dev/null; then echo "sudo yes"; else echo "sudo no"; fi; '
            "for u in ssh.service sshd.service; do "
            'systemctl is-active --quiet "$u" && { echo "unit $u"; break; }; done; '
            "awk '/^[[:space:]]*(#|$)/ {next} "
            f'{{ if (tolower($1) == "include" && $2 == "{DROP_IN_DIR}/*.conf") '
            f'print "include yes"; exit }}\' {SSHD_CONFIG}; '
            f"{queries}; "
            "for f in /etc/ssh/ssh_host_*_key.pub; do "
            '[ -e "$f" ] && echo "hostkey $(ssh-keygen -lf "$f")"; done; '
            f"[ -e {DROP_IN} ] && sed 's/^/dropin|/' {DROP_IN}; "
            f"sed -n '/^{BLOCK_BEGIN}$/,/^{BLOCK_END}$/p' {SSHD_CONFIG} | sed 's/^/block|/'; "
            "true"
        )

    def process(self, output: list[str]) -> SshdSetup | None:
        version: tuple[int, int] | None = None
        sudo, unit, include_dir = False, None, False
        supported: dict[str, list[str]] = {}
        host_keys: dict[str, int] = {}
        drop_in: list[str] | None = None
        block: list[str] | None = None
        for line in output:
            word, _, rest = line.partition(" ")
            if line.startswith("dropin|"):
                drop_in = [*(drop_in or []), line.removeprefix("dropin|")]
            elif line.startswith("block|"):
                block = [*(block or []), line.removeprefix("block|")]
            elif word == "version":
                found = re.search(r"OpenSSH_(\d+)\.(\d+)", rest)
                version = (int(found[1]), int(found[2])) if found else (0, 0)
            elif word == "sudo":
                sudo = rest.strip() == "yes"
            elif word == "unit":
                unit = rest.strip() or None
            elif word == "include":
                include_dir = True
            elif word == "Q":
                query, _, names = rest.partition(" ")
                supported[query] = names.split()
            elif word == "hostkey":
                # "256 SHA256:... root@host (ED25519)"
                parts = rest.split()
                if len(parts) >= 2 and parts[0].isdigit():
                    host_keys[parts[-1].strip("()")] = int(parts[0])
        if version is None:
            return None
        managed = drop_in if include_dir else block
        return SshdSetup(
            version=version,
            sudo=sudo,
            unit=unit,
            include_dir=include_dir,
            supported=supported,
            host_keys=host_keys,
            managed=None if managed is None else "\n".join(managed) + "\n",
        )
