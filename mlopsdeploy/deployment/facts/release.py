"""Facts about releases on the host: which exist, which is current, and whether one is intact."""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field

from pyinfra.api import FactBase

COMPLETE_MARKER = ".complete"
CHECKSUMS = "SHA256SUMS"


@dataclass(frozen=True)
class ReleaseIndex:
    """``current``/``previous``: release ids the links point at; ``ids``: oldest first."""

    current: str | None = None
    previous: str | None = None
    ids: list[str] = field(default_factory=list)


class Releases(FactBase[ReleaseIndex]):
    """The complete releases under ``base``/releases and where ``current``/``previous`` point."""

    def command(self, base: str) -> str:
        b = shlex.quote(base)
        return (
            f"for link in current previous; do "
            f'echo "$link $(basename "$(readlink {b}/$link 2>/dev/null)")"; done; '
            f"ls -1tr {b}/releases/*/{COMPLETE_MARKER} 2>/dev/null | "
            'while read -r m; do echo "release $(basename "$(dirname "$m")")"; done; true'
        )

    @staticmethod
    def default() -> ReleaseIndex:
        return ReleaseIndex()

    def process(self, output: list[str]) -> ReleaseIndex:
        links: dict[str, str | None] = {"current": None, "previous": None}
        ids: list[str] = []
        for line in output:
            kind, _, value = line.strip().partition(" ")
            if kind in links:
                links[kind] = value or None
            elif kind == "release" and value:
                ids.append(value)
        return ReleaseIndex(current=links["current"], previous=links["previous"], ids=ids)


@dataclass(frozen=True)
class ReleaseCheck:
    """``state``: ``ok``, ``absent``, ``incomplete`` or ``corrupt``; ``bad``: failing files."""

    state: str
    bad: list[str] = field(default_factory=list)


class ReleaseIntegrity(FactBase[ReleaseCheck]):
    """Checks every file of release ``path`` against its SHA256SUMS (app wheel + model files).

    This is the "installed model sha" check: a model file that was truncated, flipped or deleted
    shows up here and the deploy re-pushes the release instead of serving a broken model.
    """

    def command(self, path: str) -> str:
        p = shlex.quote(path)
        return (
            f"if [ ! -d {p} ]; then echo absent; "
            f"elif [ ! -f {p}/{COMPLETE_MARKER} ]; then echo incomplete; "
            f"else cd {p} && sha256sum --quiet -c {CHECKSUMS} 2>/dev/null; echo checked; fi"
        )

    @staticmethod
    def default() -> ReleaseCheck:
        return ReleaseCheck(state="absent")

    def process(self, output: list[str]) -> ReleaseCheck:
        last = output[-1].strip()
        if last in ("absent", "incomplete"):
            return ReleaseCheck(state=last)
        bad = [line.rsplit(": ", 1)[0] for line in output[:-1] if "FAILED" in line]
        return ReleaseCheck(state="corrupt" if bad else "ok", bad=bad)
