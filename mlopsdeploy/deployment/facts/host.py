"""Facts about the host's resources that decide whether a deploy can succeed at all."""

from __future__ import annotations

import shlex

from pyinfra.api import FactBase


class FreeSpaceMB(FactBase[int]):
    """Megabytes available on the filesystem holding ``path`` (or its nearest existing parent).

    Checked before pushing a wheelhouse or a release, so a full disk is reported as such instead
    of as a half-written file.
    """

    def command(self, path: str) -> str:
        quoted = shlex.quote(path)
        return (
            f'p={quoted}; while [ ! -e "$p" ]; do p=$(dirname "$p"); done; df -Pm "$p" | tail -n 1'
        )

    @staticmethod
    def default() -> int:
        return 0

    def process(self, output: list[str]) -> int:
        return int(output[-1].split()[3])


class PortListeners(FactBase[list[str]]):
    """``ss`` lines of TCP sockets listening on ``port`` ([] when the port is free)."""

    def command(self, port: int) -> str:
        return f"ss -Hltnp 'sport = :{int(port)}'; true"

    @staticmethod
    def default() -> list[str]:
        return []

    def process(self, output: list[str]) -> list[str]:
        return [line.strip() for line in output if line.strip()]
