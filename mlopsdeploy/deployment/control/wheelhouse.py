"""The app's dependencies as a pinned lock and a wheelhouse, built on the control machine.

Test VMs (and many course VMs) have no route to any package index, and an unpinned
``pip install`` once pulled a 2.5 GB CUDA torch onto a CPU VM. So the lock is exactly what the
control machine's environment resolved and tested (every distribution the app needs, at its
installed version, markers evaluated for the *target's* Python), and the wheels are fetched or
built here, cached by the lock's hash, and pushed.
"""

from __future__ import annotations

import fcntl
import hashlib
import importlib.metadata as md
import json
import os
import shutil
import subprocess
import sys
import sysconfig
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from mlopsdeploy.deployment.control.python_support import (
    Installed,
    check_python,
    check_wheels,
    manylinux_platforms,
    other_python_pin,
)
from mlopsdeploy.deployment.facts.runtime import LOCK_NAME, STAMP_NAME, PythonTarget

APP_DISTRIBUTION = "mlopsdeploy-app"

# uv installs a wheelhouse into a venv about 6x faster than pip (7 s vs 45 s measured on a
# testbed VM), which is most of a cold deploy. It is a binary inside a PyPI wheel, so it travels
# to the host like any other wheel.
INSTALLER = "uv"
INSTALLER_VERSION = "0.13.8"
INSTALLER_PIN = f"{INSTALLER}=={INSTALLER_VERSION}"


@dataclass(frozen=True)
class Lock:
    """Pinned requirements (``name==version`` lines) and the hash that names them everywhere."""

    text: str
    digest: str

    @property
    def count(self) -> int:
        return len(self.text.split())


def _marker_environment(target: PythonTarget) -> dict[str, str]:
    env: dict[str, str] = {key: str(value) for key, value in default_environment().items()}
    env.update(
        python_version=target.version,
        python_full_version=f"{target.version}.0",
        platform_machine=target.machine,
        sys_platform="linux",
        platform_system="Linux",
        os_name="posix",
    )
    return env


def pinned_requirements(
    target: PythonTarget, root: str = APP_DISTRIBUTION, requires: Sequence[str] | None = None
) -> Lock:
    """The dependency closure of ``root`` as installed here, pinned, for ``target``'s Python.

    ``requires`` (an app spec's requirement lines) stands in for ``root``'s own requirements.
    Not thread-safe: packaging parses markers with ``ast``, and CPython 3.11.7's compiler
    breaks in threads ("AST constructor recursion depth mismatch"); a deploy computes each
    lock once, in its caller's thread (``api.Runtimes``).
    """
    env = _marker_environment(target)
    installed = Installed()
    if requires is None:
        dist = installed.get(root)
        if dist is None:
            raise md.PackageNotFoundError(root)
        requires = installed.requires(dist, installed.headers(dist))
    pins: dict[str, str] = {}
    pending = [requires]
    while pending:
        for spec in pending.pop():
            req = Requirement(spec)
            if req.marker is not None and not req.marker.evaluate({**env, "extra": ""}):
                continue
            name = canonicalize_name(req.name)
            if name not in pins:
                found = installed.get(name)
                if found is None:  # needed only on the target's Python
                    pins[name] = other_python_pin(req, target.version)
                    continue
                headers = installed.headers(found)
                pins[name] = str(headers["Version"])
                pending.append(installed.requires(found, headers))
    text = "".join(f"{name}=={version}\n" for name, version in sorted(pins.items()))
    tag = f"{target.version}-{target.machine}"
    digest = hashlib.sha256(f"{tag}\n{text}".encode()).hexdigest()[:16]
    return Lock(text=text, digest=digest)


def _environment() -> list[tuple[str, int]]:
    """Every sys.path entry with the time its listing last changed.

    The lock is read from the ``.dist-info`` directories these entries list; installing,
    upgrading or removing a distribution adds or removes such a directory (its name carries the
    version), which changes the entry's mtime.
    """
    found = []
    for entry in sys.path:
        try:
            found.append((entry, os.stat(entry or ".").st_mtime_ns))
        except OSError:
            continue
    return found


def checked_lock(
    target: PythonTarget, requires: Sequence[str] | None, cache: Path | None = None
) -> Lock:
    """``pinned_requirements`` for ``target`` once ``check_python`` accepted its Python.

    Both walk the installed closure's metadata (~0.2 s each, a tenth of a no-op deploy). With
    ``cache``, an accepted lock is kept in ``<cache>/locks/`` under its inputs (the target, the
    requirements, this interpreter and ``_environment()``), so a deploy from an unchanged
    environment reads it back instead. What that trades away: a METADATA file edited in place,
    with no install, is not seen until something is installed or removed. A refusal
    (UnsupportedPython) is never kept.
    """
    inputs = json.dumps([sys.executable, vars(target), requires, _environment()])
    stored = None
    if cache is not None:
        stored = cache / "locks" / f"{hashlib.sha256(inputs.encode()).hexdigest()[:32]}.json"
        try:
            kept = json.loads(stored.read_text())
            return Lock(text=str(kept["text"]), digest=str(kept["digest"]))
        except (OSError, ValueError, KeyError, TypeError):
            pass  # not kept yet (or unreadable): computed below
    check_python(target.version, APP_DISTRIBUTION)
    lock = pinned_requirements(target, requires=requires)
    if stored is not None:
        stored.parent.mkdir(parents=True, exist_ok=True)
        partial = stored.with_suffix(f".{os.getpid()}.tmp")
        partial.write_text(json.dumps({"text": lock.text, "digest": lock.digest}))
        partial.replace(stored)  # whole or not at all, for a parallel deploy reading it
    return lock


def _matches_control(target: PythonTarget) -> bool:
    here = f"{sys.version_info.major}.{sys.version_info.minor}"
    return target.version == here and sysconfig.get_platform() == f"linux-{target.machine}"


def _fetch_command(target: PythonTarget, lock_file: Path, out: Path) -> list[str]:
    pip = [sys.executable, "-m", "pip", "--quiet"]
    if _matches_control(target):
        # Same interpreter and platform: `pip wheel` reuses pip's cache and builds any sdist-only
        # package into a wheel the host can install.
        return [*pip, "wheel", "--no-deps", "-r", str(lock_file), "-w", str(out)]
    return [
        *pip,
        "download",
        "--no-deps",
        "--only-binary=:all:",
        f"--python-version={target.version}",
        *(f"--platform={tag}" for tag in manylinux_platforms(target.libc, target.machine)),
        "--implementation=cp",
        "-r",
        str(lock_file),
        "-d",
        str(out),
    ]


def wheelhouse_dir(cache: Path, lock: Lock, target: PythonTarget) -> Path:
    """Keyed by the lock *and* the host's glibc: the same pins resolve to different manylinux
    wheels for different glibc versions, so one host's wheels must not be reused for another's."""
    return cache / "wheelhouse" / f"{lock.digest}-glibc{target.libc or 'unknown'}"


@contextmanager
def _building(out: Path) -> Iterator[Path]:
    """Hold ``<out>.lock`` (flock) and give a fresh private dir beside ``out`` to build into.

    One builder per cache entry at a time, across processes (parallel test workers, the
    watchdog, a manual deploy); the caller renames the finished dir onto ``out`` while still
    holding the lock, so nobody ever deletes or reads another's half-built result.
    """
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out.with_name(f"{out.name}.lock"), "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        # With the lock held, any other partial of this entry is a killed builder's leftover.
        for stale in out.parent.glob(f"{out.name}.partial-*"):
            shutil.rmtree(stale, ignore_errors=True)
        partial = out.with_name(f"{out.name}.partial-{os.getpid()}")
        partial.mkdir()
        try:
            yield partial
        finally:
            shutil.rmtree(partial, ignore_errors=True)


def _install_dir(partial: Path, out: Path) -> None:
    """Move a finished build onto ``out`` (replacing a leftover without a stamp)."""
    shutil.rmtree(out, ignore_errors=True)
    partial.rename(out)


def build_wheelhouse(cache: Path, lock: Lock, target: PythonTarget) -> Path:
    """Wheels for every pin of ``lock`` in ``<cache>/wheelhouse/<digest>``; reused when present.

    The stamp file is written last, so an interrupted build is redone rather than half-pushed.
    """
    out = wheelhouse_dir(cache, lock, target)
    if (out / STAMP_NAME).is_file():
        return out
    if not _matches_control(target):
        check_wheels(lock.text, target.version, manylinux_platforms(target.libc, target.machine))
    with _building(out) as partial:
        if (out / STAMP_NAME).is_file():  # another process built it while this one waited
            return out
        (partial / LOCK_NAME).write_text(lock.text)
        result = subprocess.run(
            _fetch_command(target, partial / LOCK_NAME, partial), capture_output=True, text=True
        )
        if result.returncode != 0:
            raise RuntimeError(f"building the wheelhouse failed:\n{result.stderr[-2000:]}")
        (partial / STAMP_NAME).write_text(lock.digest + "\n")
        _install_dir(partial, out)
    return out


def fetch_installer(cache: Path, target: PythonTarget) -> Path:
    """The uv wheel for the host's machine, downloaded once into ``<cache>/installer``."""
    out = cache / "installer" / f"{INSTALLER}-{INSTALLER_VERSION}-{target.machine}"
    if wheels := sorted(out.glob("*.whl")):
        return wheels[0]
    with _building(out) as partial:
        if wheels := sorted(out.glob("*.whl")):  # another process fetched it meanwhile
            return wheels[0]
        download = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps"]
        platform = f"--platform=manylinux_2_17_{target.machine}"
        result = subprocess.run(
            [*download, "--only-binary=:all:", platform, "-d", str(partial), INSTALLER_PIN],
            capture_output=True,
            text=True,
        )
        if result.returncode != 0 or not list(partial.glob("*.whl")):
            raise RuntimeError(f"downloading {INSTALLER} failed:\n{result.stderr[-2000:]}")
        _install_dir(partial, out)
    return sorted(out.glob("*.whl"))[0]
