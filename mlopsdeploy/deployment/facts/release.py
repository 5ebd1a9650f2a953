"""Facts about releases on the host: which exist, which is current, and whether one is intact."""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field

from pyinfra.api import FactBase

# What the deploy names releases (``r-<hash>``); a link pointing anywhere else is no release and
# its name, read back from the host, never reaches a shell command or a path.
RELEASE_ID = re.compile(r"r-[0-9a-f]{6,64}")

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
            if not RELEASE_ID.fullmatch(value):
                continue
            if kind in links:
                links[kind] = value
            elif kind == "release":
                ids.append(value)
        return ReleaseIndex(current=links["current"], previous=links["previous"], ids=ids)


@dataclass(frozen=True)
class ReleaseCheck:
    """``state``: ``ok``, ``absent``, ``incomplete`` or ``corrupt``.

    ``bad``: expected files that are missing or differ; ``extra``: files nobody shipped.
    """

    state: str
    bad: list[str] = field(default_factory=list)
    extra: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class ReleaseFiles:
    """sha256 of every file under a release dir, by path inside it (None: no such dir).

    ``__pycache__`` is left out: Python writes it there at run time and rebuilds it from the
    sources when they change. ``complete``: the marker written after a verified stage.
    """

    digests: dict[str, str] | None
    complete: bool = False

    def against(self, expected: dict[str, str]) -> ReleaseCheck:
        """Compare with what the release must hold exactly (``ReleaseBundle.digests``)."""
        if self.digests is None:
            return ReleaseCheck(state="absent", bad=sorted(expected))
        bad = sorted(rel for rel, sha in expected.items() if self.digests.get(rel) != sha)
        extra = sorted(set(self.digests) - set(expected))
        if bad or extra:
            return ReleaseCheck(state="corrupt", bad=bad, extra=extra)
        return ReleaseCheck(state="ok" if self.complete else "incomplete")


# Run by the host's python3 (the deploy needs one anyway): hashlib hashes with OpenSSL, which
# uses the CPU's SHA extensions where coreutils' sha256sum does not (the 34 MB release of an ONNX
# host on a testbed VM: 0.05 s against 0.22 s). It prints what ``find ... | xargs sha256sum``
# printed: regular files only, no ``__pycache__``, names with a backslash or newline escaped.
# Its arguments: the release dir, and the name of the completion marker it reports apart.
_HASH_RELEASE = r"""
import hashlib, os, stat, sys
marker = sys.argv[2]
if not os.path.isdir(sys.argv[1]):
    print("absent")
    sys.exit()
os.chdir(sys.argv[1])
if os.path.isfile(marker):
    print("complete")
buffer = bytearray(1 << 20)
for top, dirs, files in os.walk("."):
    dirs[:] = [d for d in dirs if d != "__pycache__"]
    for name in files:
        rel = os.path.join(top, name)
        try:
            if name == marker or not stat.S_ISREG(os.lstat(rel).st_mode):
                continue
            digest = hashlib.sha256()
            with open(rel, "rb") as f:
                while True:
                    n = f.readinto(buffer)
                    if not n:
                        break
                    digest.update(memoryview(buffer)[:n])
        except OSError:
            continue
        escaped = rel.replace("\\", "\\\\").replace("\n", "\\n")
        print(("\\" if escaped != rel else "") + digest.hexdigest() + "  " + escaped)
"""


class ReleaseIntegrity(FactBase[ReleaseFiles]):
    """Hashes every file of release ``path``: app wheel, unpacked app, model, SHA256SUMS.

    The deploy compares this with the bundle on the control machine, so a damaged, missing or
    extra file anywhere in the release (including a deleted SHA256SUMS, which the host itself
    could not check against) is repaired instead of served. Every file is read on every run:
    no timestamp stands in for its content.
    """

    def command(self, path: str) -> str:
        return f"python3 -c {shlex.quote(_HASH_RELEASE)} {shlex.quote(path)} {COMPLETE_MARKER}"

    @staticmethod
    def default() -> ReleaseFiles:
        return ReleaseFiles(digests=None)

    def process(self, output: list[str]) -> ReleaseFiles:
        if output and output[0].strip() == "absent":
            return ReleaseFiles(digests=None)
        digests: dict[str, str] = {}
        complete = False
        for line in output:
            if line.strip() == "complete":
                complete = True
                continue
            digest, _, rel = line.rstrip("\n").partition("  ")
            if rel:
                digests[rel.removeprefix("./")] = digest.removeprefix("\\")
        return ReleaseFiles(digests=digests, complete=complete)


@dataclass(frozen=True)
class Seal:
    """``checksums``: sha256 of the release's SHA256SUMS (None: missing); ``complete``: marked."""

    checksums: str | None = None
    complete: bool = False


class ReleaseSeal(FactBase[Seal]):
    """Whether release ``path`` is sealed: its SHA256SUMS as written, and its completion marker.

    Cheap (one small file hashed), where ``ReleaseIntegrity`` hashes the whole release: the seal
    step asks after the stage step already compared every file.
    """

    def command(self, path: str) -> str:
        p = shlex.quote(path)
        return (
            f"cd {p} 2>/dev/null && {{ [ -f {COMPLETE_MARKER} ] && echo complete; "
            f"[ -f {CHECKSUMS} ] && sha256sum < {CHECKSUMS}; }}; true"
        )

    @staticmethod
    def default() -> Seal:
        return Seal()

    def process(self, output: list[str]) -> Seal:
        words = [line.split()[0] for line in output if line.strip()]
        checksums = next((w for w in words if re.fullmatch(r"[0-9a-f]{64}", w)), None)
        return Seal(checksums=checksums, complete="complete" in words)
