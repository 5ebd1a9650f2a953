"""Where built models live: a cache keyed by version id, and atomic publication of a directory.

Training takes minutes, so a build whose inputs (hence version id) did not change must reuse
the earlier result. Every directory is written next to its final place and renamed in, so a
crash or a failed gate never leaves a half-written model where a deploy or test would pick it
up.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from mlopsdeploy.model.manifest import read_manifest, verify

CACHE_ENV = "MLOPSDEPLOY_CACHE"


def default_cache_dir() -> Path:
    """$MLOPSDEPLOY_CACHE, else $XDG_CACHE_HOME/mlopsdeploy/models, else ~/.cache/..."""
    if configured := os.environ.get(CACHE_ENV):
        return Path(configured).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "mlopsdeploy" / "models"


def cached(cache_dir: Path, version: str) -> Path | None:
    """The cache entry for `version` if it is present, intact and really that version."""
    entry = cache_dir / version
    if not entry.is_dir() or verify(entry):
        return None
    try:
        return entry if read_manifest(entry).get("version") == version else None
    except (OSError, ValueError):
        return None


def _make_readable(root: Path) -> None:
    """0755 dirs, 0644 files: save_pretrained and mkdtemp create owner-only modes."""
    root.chmod(0o755)
    for path in root.rglob("*"):
        path.chmod(0o755 if path.is_dir() else 0o644)


@contextmanager
def atomic_dir(dest: Path) -> Iterator[Path]:
    """Yield an empty sibling temp dir; on success it replaces `dest`, on error it is removed."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.tmp-", dir=dest.parent))
    try:
        yield tmp
        _make_readable(tmp)
        if dest.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{dest.name}.old-", dir=dest.parent))
            os.replace(dest, old / dest.name)
            os.replace(tmp, dest)
            shutil.rmtree(old)
        else:
            os.replace(tmp, dest)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)


def copy_artifact(src: Path, dest: Path) -> None:
    """Atomically replace `dest` with a copy of the artifact at `src`.

    A copy, not hardlinks: tests and users may corrupt a published copy on purpose (to check
    that verify catches it), and that must never reach into the cache.
    """
    with atomic_dir(dest) as tmp:
        shutil.copytree(src, tmp, dirs_exist_ok=True)
