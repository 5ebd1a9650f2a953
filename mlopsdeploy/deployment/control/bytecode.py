"""The wheelhouse's bytecode, compiled once on the control machine and pushed with the wheels.

A fresh venv has no ``.pyc``: a worker's first start compiles every module it imports (gradio's
UI included), on the host's CPU, on every cold host. Measured on this machine: 3.0 CPU seconds to
``accepting`` and 12.5 to ``READY=1`` on a fresh venv, against 1.3 and 6.4 once the bytecode is
there. So the bytecode of every module the wheels install (their tests excepted) is compiled here,
once per wheelhouse, and travels as one archive the host unpacks into the new venv.

The ``.pyc`` files are *checked-hash* ones (PEP 552): the importer hashes the source next to a
``.pyc`` and compiles that source itself when the hash differs. A venv file changed after the
install, or a module compiled from other bytes than the host's, is therefore never run from stale
bytecode; it only costs the compile it would have cost anyway. Bytecode is specific to a Python
minor version, so the archive is built only for a host whose Python is the control machine's.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path, PurePosixPath

# Under the wheelhouse (and under the pushed copy on the host): uv's --find-links reads only the
# wheelhouse's own directory, so an archive one level down is never taken for a package.
BYTECODE_DIR = "bytecode"
# One archive per bytecode tag: ``cpython-311.tar.gz``.
ARCHIVE_SUFFIX = ".tar.gz"
# Not compiled: modules no app imports at run time, a third of a venv's sources (pandas' tests).
SKIPPED_DIRS = frozenset({"tests", "test", "testing"})
# Wheel directories whose files land in site-packages; the other .data/ kinds (scripts,
# headers, data) go elsewhere and are not imported.
SITE_DATA = frozenset({"purelib", "platlib"})


def cache_tag() -> str:
    """This interpreter's bytecode tag (``cpython-311``): the only Python its ``.pyc`` suit."""
    tag = sys.implementation.cache_tag
    if tag is None:
        raise RuntimeError(f"{sys.implementation.name} writes no bytecode")
    return tag


def compiles_for(version: str) -> bool:
    """Whether this interpreter's bytecode runs on a host's CPython ``version`` (``3.11``)."""
    here = f"{sys.version_info.major}.{sys.version_info.minor}"
    return sys.implementation.name == "cpython" and version == here


def archive_name() -> str:
    return f"{cache_tag()}{ARCHIVE_SUFFIX}"


def archive_path(wheelhouse: Path) -> Path:
    """Where the bytecode of ``wheelhouse``'s wheels is kept (and pushed from)."""
    return wheelhouse / BYTECODE_DIR / archive_name()


def _site_path(member: str) -> PurePosixPath | None:
    """Where a wheel's ``.py`` member lands relative to site-packages; None: not compiled."""
    path = PurePosixPath(member)
    if path.is_absolute() or ".." in path.parts or path.suffix != ".py":
        return None
    if path.parts[0].endswith(".data"):
        if len(path.parts) < 3 or path.parts[1] not in SITE_DATA:
            return None
        path = PurePosixPath(*path.parts[2:])
    if SKIPPED_DIRS.intersection(path.parts[:-1]):
        return None
    return path


def _unpack_sources(wheels: list[Path], into: Path) -> int:
    """Write the wheels' importable ``.py`` files under ``into`` as they will be installed."""
    count = 0
    for wheel in wheels:
        with zipfile.ZipFile(wheel) as archive:
            for member in archive.namelist():
                site_path = _site_path(member)
                if site_path is None:
                    continue
                target = into.joinpath(*site_path.parts)
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(archive.read(member))
                count += 1
    return count


def _compile(tree: Path) -> None:
    """Compile every source under ``tree`` on all cores, in a child process.

    compileall's worker pool forks, which a deploy's threads must not do in their own process.
    A module this Python cannot compile (a Python 2 file a package ships and never imports) is
    left without bytecode, as it would be on the host, so compileall's exit status is not an
    error here; a compiler that cannot run at all is.
    """
    command = [sys.executable, "-m", "compileall", "-q", "-j", "0"]
    command += ["--invalidation-mode", "checked-hash", str(tree)]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode not in (0, 1):
        raise RuntimeError(f"compiling the wheelhouse's bytecode failed:\n{result.stderr[-2000:]}")


def _pack(tree: Path, out: Path) -> None:
    """Archive the ``.pyc`` files under ``tree`` by their site-packages paths, sorted."""
    pycs = sorted(tree.rglob(f"__pycache__/*.{cache_tag()}.pyc"))
    with tarfile.open(out, "w:gz", compresslevel=6) as archive:
        for pyc in pycs:
            info = archive.gettarinfo(pyc, arcname=pyc.relative_to(tree).as_posix())
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            info.mode = 0o644
            with pyc.open("rb") as handle:
                archive.addfile(info, handle)


def build_bytecode(wheelhouse: Path) -> Path:
    """The archive of checked-hash bytecode for ``wheelhouse``'s wheels; built once, then reused.

    Written to a temporary name and renamed, so an interrupted build leaves no archive that
    looks finished; two builders racing each rename a complete one.
    """
    out = archive_path(wheelhouse)
    if out.is_file():
        return out
    out.parent.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out.parent, prefix=".build-") as work:
        tree = Path(work) / "site-packages"
        tree.mkdir()
        if _unpack_sources(sorted(wheelhouse.glob("*.whl")), tree):
            _compile(tree)
        partial = Path(work) / out.name
        _pack(tree, partial)
        os.replace(partial, out)
    return out
