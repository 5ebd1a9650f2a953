"""A machine's disk: an overlayfs of the read-only image with a per-machine upper layer.

Writes land in `upper`, so wiping a machine is deleting two directories, and any number of
machines share one image on disk.
"""

from __future__ import annotations

import re
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Overlay:
    lower: Path
    upper: Path
    work: Path
    merged: Path

    def mount(self) -> None:
        if is_mountpoint(self.merged):
            return
        for path in (self.upper, self.work, self.merged):
            path.mkdir(parents=True, exist_ok=True)
        options = f"lowerdir={self.lower},upperdir={self.upper},workdir={self.work}"
        _run("mount", "-t", "overlay", "overlay", "-o", options, str(self.merged))

    def unmount(self, timeout: float = 10.0) -> None:
        unmount(self.merged, timeout)

    def discard_changes(self) -> None:
        """Drop everything written to the machine's disk (it must be unmounted)."""
        if is_mountpoint(self.merged):
            raise RuntimeError(f"{self.merged} is mounted; unmount before discarding")
        for path in (self.upper, self.work):
            if path.exists():
                _run("rm", "-rf", "--one-file-system", str(path))


def unmount(path: Path, timeout: float = 10.0) -> None:
    """Unmount `path` if mounted, retrying while the last container processes let go of it."""
    deadline = time.monotonic() + timeout
    while is_mountpoint(path):
        result = subprocess.run(["umount", str(path)], capture_output=True, text=True, check=False)
        if result.returncode != 0 and time.monotonic() > deadline:
            raise RuntimeError(f"cannot unmount {path}: {result.stderr.strip()}")
        if result.returncode != 0:
            time.sleep(0.1)


def mounts_under(root: Path) -> list[Path]:
    """Mount points at or below `root`, from the kernel's table (deepest first)."""
    prefix = str(root.resolve())
    found = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        point = _unescape(line.split()[4])
        if point == prefix or point.startswith(prefix + "/"):
            found.append(Path(point))
    return sorted(found, key=lambda p: len(p.parts), reverse=True)


def is_mountpoint(path: Path) -> bool:
    return path.resolve() in mounts_under(path)


def _unescape(field: str) -> str:
    """mountinfo escapes space, tab, newline and backslash as octal."""
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


def _run(*argv: str) -> None:
    result = subprocess.run(list(argv), capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed: {result.stderr.strip()}")
