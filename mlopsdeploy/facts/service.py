"""Facts about the app's systemd unit: files in place, enabled, running, linger."""

from __future__ import annotations

import shlex
from dataclasses import dataclass

from pyinfra.api import FactBase


class FileDigest(FactBase[str | None]):
    """sha256 and octal mode of ``path`` as ``"<sha256> <mode>"`` (None when missing).

    Used for the unit and the token file, so the deploy rewrites them only when their content or
    mode differs, and never has to read the token back.
    """

    def command(self, path: str) -> str:
        p = shlex.quote(path)
        return (
            f'if [ -f {p} ]; then echo "$(sha256sum < {p} | cut -c1-64) $(stat -c %a {p})"; '
            "else echo none; fi"
        )

    def process(self, output: list[str]) -> str | None:
        value = output[-1].strip()
        return None if value == "none" else value


@dataclass(frozen=True)
class UnitStatus:
    active: bool
    enabled: bool
    linger: bool


class ServiceStatus(FactBase[UnitStatus]):
    """Whether ``unit`` is active and enabled in the ``scope`` manager, and whether linger is on.

    Linger is what keeps a user unit running with nobody logged in and after a reboot.
    """

    def command(self, unit: str, scope: str) -> str:
        ctl = "systemctl --user" if scope == "user" else "systemctl"
        u = shlex.quote(unit)
        return (
            f"echo active $({ctl} is-active {u} 2>/dev/null); "
            f"echo enabled $({ctl} is-enabled {u} 2>/dev/null); "
            'if [ -e "/var/lib/systemd/linger/$(id -un)" ]; then echo linger yes; '
            "else echo linger no; fi"
        )

    @staticmethod
    def default() -> UnitStatus:
        return UnitStatus(active=False, enabled=False, linger=False)

    def process(self, output: list[str]) -> UnitStatus:
        values = dict([*line.split(), ""][:2] for line in output if line.strip())
        return UnitStatus(
            active=values.get("active") == "active",
            enabled=values.get("enabled") == "enabled",
            linger=values.get("linger") == "yes",
        )
