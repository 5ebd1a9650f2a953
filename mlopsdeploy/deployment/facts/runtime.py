"""Facts about the Python runtime on the host: its interpreter, its venvs, whether one is intact."""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field

from pyinfra.api import FactBase

from mlopsdeploy.deployment.facts.release import RELEASE_ID

LOCK_NAME = "mlopsdeploy-lock.txt"
STAMP_NAME = "mlopsdeploy-lock.sha256"

# Venvs live in ``venvs/<lock digest>``; the units run ``venv`` (a link to the serving one), the
# gate's candidate runs ``candidate-venv``, and each release that served records the venv it
# served with in ``releases/<id>/.venv``. A name read back from the host that is not a lock
# digest is none of the deploy's and never reaches a shell command.
VENV_NAME = re.compile(r"[0-9a-f]{16}")
VENVS_DIR = "venvs"
SERVING_VENV = "venv"
CANDIDATE_VENV = "candidate-venv"
RELEASE_VENV = ".venv"

# Run by the venv's own interpreter: every pinned distribution must be installed at its pinned
# version with every file of its RECORD present at its recorded size, and any file written after
# the stamp (the last thing an install writes) must still have its recorded sha256. So a changed
# file is hashed, an untouched one only stat'ed: 25k files stay well under a second, where
# hashing the whole 1.2 GB venv on every run would take many seconds. Distributions are found by
# their .dist-info directories and versions read from METADATA's header only: importlib.metadata
# parsed each whole METADATA (long descriptions included), 0.3 s of this fact's 0.4 s on a VM,
# and every deploy, a no-op too, waits for this fact.
_CHECK_VENV = f"""
import base64, csv, hashlib, os, re, sys
stamp = os.path.join(sys.prefix, {STAMP_NAME!r})
print("stamp", open(stamp).read().strip() if os.path.isfile(stamp) else "none")
since = os.stat(stamp).st_mtime_ns if os.path.isfile(stamp) else 0
def key(name):
    return re.sub(r"[-_.]+", "-", name).lower()
def intact(path, algo_digest, size):
    try:
        st = os.stat(path)
    except OSError:
        return False
    if size and st.st_size != int(size):
        return False
    if st.st_mtime_ns <= since or not algo_digest.startswith("sha256="):
        return True
    with open(path, "rb") as f:
        found = hashlib.file_digest(f, "sha256").digest()
    return base64.urlsafe_b64encode(found).rstrip(b"=").decode() == algo_digest[7:]
def header_version(info):
    try:
        with open(os.path.join(info, "METADATA"), encoding="utf-8") as f:
            for line in f:
                if line.startswith("Version:"):
                    return line[8:].strip()
                if not line.strip():
                    break
    except OSError:
        pass
    return None
found = {{}}
for site in dict.fromkeys(p for p in sys.path if p.startswith(sys.prefix) and os.path.isdir(p)):
    for entry in sorted(os.listdir(site)):
        if entry.endswith(".dist-info"):
            name = entry[: -len(".dist-info")].rpartition("-")[0]
            found.setdefault(key(name), []).append((site, os.path.join(site, entry)))
lock = os.path.join(sys.prefix, {LOCK_NAME!r})
for line in (open(lock).read().split() if os.path.isfile(lock) else []):
    name, _, version = line.partition("==")
    dists = found.get(key(name))
    if not dists:
        print("broken", name, "missing")
        continue
    versions = [(header_version(info), site, info) for site, info in dists]
    match = [(site, info) for found_version, site, info in versions if found_version == version]
    if not match:
        print("broken", name, "version", versions[0][0])
        continue
    site, info = match[0]
    try:
        record = open(os.path.join(info, "RECORD"), encoding="utf-8").read()
    except OSError:
        record = ""
    rows = csv.reader(record.splitlines())
    if any(row and not intact(os.path.join(site, row[0]), *(row + ["", ""])[1:3]) for row in rows):
        print("broken", name, "files")
"""


@dataclass(frozen=True)
class VenvReport:
    """``stamp``: hash of the lock the venv was built from (None: no usable venv).

    ``broken``: distribution names that are missing, at the wrong version, or lost files.
    """

    stamp: str | None
    broken: list[str] = field(default_factory=list)


class VenvState(FactBase[VenvReport]):
    """What the venv at ``venv`` was built from, and which of its packages are broken."""

    def command(self, venv: str) -> str:
        python = shlex.quote(f"{venv}/bin/python")
        return (
            f"if {python} -c 'pass' 2>/dev/null; then {python} -c {shlex.quote(_CHECK_VENV)}; "
            "else echo stamp none; fi"
        )

    @staticmethod
    def default() -> VenvReport:
        return VenvReport(stamp=None)

    def process(self, output: list[str]) -> VenvReport:
        stamp: str | None = None
        broken: list[str] = []
        for line in output:
            kind, _, rest = line.partition(" ")
            if kind == "stamp":
                stamp = None if rest == "none" else rest
            elif kind == "broken":
                broken.append(rest.split()[0])
        return VenvReport(stamp=stamp, broken=broken)


@dataclass(frozen=True)
class VenvIndex:
    """The venvs under ``venvs/`` and which of them are in use.

    + serving: the venv the ``venv`` link points at (None: no such link)
    + legacy: ``venv`` is a plain directory (the layout before per-lock venvs): the lock stamp
      it holds, or ``""`` when it has none
    + recorded: release id -> the venv that release last served with
    + present: every venv directory under ``venvs/``
    """

    serving: str | None = None
    legacy: str | None = None
    recorded: dict[str, str] = field(default_factory=dict)
    present: list[str] = field(default_factory=list)


class Venvs(FactBase[VenvIndex]):
    """Where the ``venv`` link and the releases' records point, and which venvs exist."""

    def command(self, base: str) -> str:
        b = shlex.quote(base)
        return (
            f'if [ -L {b}/{SERVING_VENV} ]; then echo "serving $(basename "$(readlink '
            f'{b}/{SERVING_VENV})")"; elif [ -d {b}/{SERVING_VENV} ]; then '
            f'echo "legacy $(cat {b}/{SERVING_VENV}/{STAMP_NAME} 2>/dev/null)"; fi; '
            f'for l in {b}/releases/*/{RELEASE_VENV}; do [ -L "$l" ] && '
            'echo "release $(basename "$(dirname "$l")") $(basename "$(readlink "$l")")"; done; '
            f'for d in {b}/{VENVS_DIR}/*; do [ -d "$d" ] && echo "venv $(basename "$d")"; done; '
            "true"
        )

    @staticmethod
    def default() -> VenvIndex:
        return VenvIndex()

    def process(self, output: list[str]) -> VenvIndex:
        serving: str | None = None
        legacy: str | None = None
        recorded: dict[str, str] = {}
        present: list[str] = []
        for line in output:
            kind, *words = line.split()
            if kind == "legacy":
                legacy = words[0] if words and VENV_NAME.fullmatch(words[0]) else ""
            elif not words or not VENV_NAME.fullmatch(words[-1]):
                continue
            elif kind == "serving":
                serving = words[0]
            elif kind == "release" and len(words) == 2 and RELEASE_ID.fullmatch(words[0]):
                recorded[words[0]] = words[1]
            elif kind == "venv":
                present.append(words[0])
        return VenvIndex(serving=serving, legacy=legacy, recorded=recorded, present=present)


class LockStamp(FactBase[str | None]):
    """Lock hash recorded in dir ``path`` (a pushed wheelhouse or a built venv; None: absent).

    Written last in both, so a half-pushed wheelhouse or half-built venv has none.
    """

    def command(self, path: str) -> str:
        return f"cat {shlex.quote(path)}/{STAMP_NAME} 2>/dev/null || echo none"

    def process(self, output: list[str]) -> str | None:
        value = output[-1].strip()
        return None if value == "none" else value


class InstallerVersion(FactBase[str | None]):
    """``<name> <version>`` of the installer binary at ``path`` (None when missing or broken)."""

    def command(self, path: str) -> str:
        return f"{shlex.quote(path)} --version 2>/dev/null || echo none"

    def process(self, output: list[str]) -> str | None:
        words = output[-1].split()  # e.g. "uv 0.13.8 (x86_64-unknown-linux-gnu)"
        return None if words[:1] == ["none"] else " ".join(words[:2])


@dataclass(frozen=True)
class PythonTarget:
    """The host interpreter a wheelhouse must be built for."""

    version: str
    machine: str
    libc: str


class TargetPython(FactBase[PythonTarget | None]):
    """``python3`` on the host: version (``3.11``), machine (``x86_64``) and glibc (``2.36``)."""

    def command(self) -> str:
        return (
            "python3 -c 'import platform, sys; "
            'print("%d.%d" % sys.version_info[:2], platform.machine(), platform.libc_ver()[1])\''
        )

    def process(self, output: list[str]) -> PythonTarget:
        version, machine, libc = output[-1].split()
        return PythonTarget(version=version, machine=machine, libc=libc)
