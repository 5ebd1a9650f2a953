"""Facts about the load balancer host: its Debian release, its packages, HAProxy's config."""

from __future__ import annotations

import shlex
from dataclasses import dataclass

from pyinfra.api import FactBase

HAPROXY_CONFIG = "/etc/haproxy/haproxy.cfg"


@dataclass(frozen=True)
class DebianRelease:
    """Codename and dpkg architecture: which .deb files the host can install."""

    codename: str
    arch: str


class HostDebianRelease(FactBase[DebianRelease | None]):
    """The host's Debian codename and architecture (None on a host without dpkg)."""

    def command(self) -> str:
        return '. /etc/os-release && echo "$VERSION_CODENAME" && dpkg --print-architecture'

    def process(self, output: list[str]) -> DebianRelease | None:
        if len(output) < 2:
            return None
        return DebianRelease(codename=output[0].strip(), arch=output[1].strip())


class DpkgStatus(FactBase[str]):
    """The host's whole dpkg status file, for resolving on the control machine what it lacks.

    Read only when a package is missing; a few hundred kB on a minimal Debian.
    """

    def command(self) -> str:
        return "cat /var/lib/dpkg/status"

    @staticmethod
    def default() -> str:
        return ""

    def process(self, output: list[str]) -> str:
        return "\n".join(output) + "\n"


class FileText(FactBase[str | None]):
    """The text of a root-readable file (None when it does not exist), read with sudo."""

    def command(self, path: str) -> str:
        quoted = shlex.quote(path)
        return f"if sudo -n test -f {quoted}; then echo present; sudo -n cat {quoted}; fi"

    def process(self, output: list[str]) -> str | None:
        if not output or output[0] != "present":
            return None
        return "".join(f"{line}\n" for line in output[1:])
