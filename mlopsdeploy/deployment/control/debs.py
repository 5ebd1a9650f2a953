"""Debian packages for a host with no route to a mirror, fetched on the control machine.

The host's own dpkg status decides what it lacks: apt on the control machine resolves the
install against that status file, so nothing the host already has is fetched or replaced, and
``apt-get download`` fetches exactly those versions (checked against the signed index) into a
pool. The files then travel to the host the way the wheelhouse does. The control machine's apt
sources pick the versions, so the host must run the control machine's Debian release and
architecture; another one is refused by name instead of getting packages built for the wrong one.
"""

from __future__ import annotations

import fcntl
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

# "Inst haproxy (2.6.12-1+deb12u4 Debian-Security:12/stable-security [amd64])", or with the
# installed version in brackets when an upgrade is needed: "Inst libc6 [2.36-9] (2.36-9+...".
_INST = re.compile(r"^Inst (\S+) (?:\[[^]]*\] )?\((\S+) ")
# "'http://.../haproxy_2.6.12-1+deb12u4_amd64.deb' haproxy_2.6.12-1+deb12u4_amd64.deb 2162312 ..."
_URI = re.compile(r"^'[^']+' (\S+\.deb) ")


def _apt(args: Sequence[str], cwd: Path | None = None) -> str:
    result = subprocess.run(
        ["apt-get", "-q", "-o", "Debug::NoLocking=1", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**os.environ, "LC_ALL": "C"},
    )
    if result.returncode != 0:
        raise RuntimeError(f"apt-get {' '.join(args)} failed: {result.stderr.strip()[-1500:]}")
    return result.stdout


def control_release() -> tuple[str, str]:
    """(codename, architecture) of the control machine, whose apt sources fetch the packages."""
    fields = dict(
        line.split("=", 1)
        for line in Path("/etc/os-release").read_text().splitlines()
        if "=" in line
    )
    arch = subprocess.run(
        ["dpkg", "--print-architecture"], capture_output=True, text=True, check=True
    ).stdout.strip()
    return fields.get("VERSION_CODENAME", "").strip('"'), arch


def missing_versions(packages: Sequence[str], host_status: str) -> list[str]:
    """``name=version`` of every package an install of ``packages`` adds to the host.

    apt simulates the install against the host's dpkg status (``host_status``), not the control
    machine's, so the list is what *that* host lacks, dependencies included.
    """
    with tempfile.TemporaryDirectory(prefix="mlopsdeploy-dpkg-") as work:
        status, extended = Path(work) / "status", Path(work) / "extended_states"
        status.write_text(host_status)
        extended.write_text("")
        output = _apt(
            [
                "-s",
                "-o",
                f"Dir::State::status={status}",
                "-o",
                f"Dir::State::extended_states={extended}",
                "install",
                "--no-install-recommends",
                *packages,
            ]
        )
    return [f"{m[1]}={m[2]}" for line in output.splitlines() if (m := _INST.match(line))]


def fetch_debs(pool: Path, versions: Sequence[str]) -> list[Path]:
    """The ``.deb`` files of ``versions`` (``name=version``), downloaded into ``pool`` once.

    Files are named by package, version and architecture, so a pool shared by every host and
    run never holds two different files under one name. One fetch at a time per pool (flock).
    """
    if not versions:
        return []
    files = [
        m[1]
        for line in _apt(["download", "--print-uris", *versions]).splitlines()
        if (m := _URI.match(line))
    ]
    if len(files) != len(versions):
        raise RuntimeError(f"apt-get knows {len(files)} files for {len(versions)} packages")
    pool.mkdir(parents=True, exist_ok=True)
    with open(pool / ".lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if any(not (pool / name).is_file() for name in files):
            partial = Path(tempfile.mkdtemp(dir=pool, prefix=".partial-"))
            try:
                _apt(["download", *versions], cwd=partial)
                for deb in partial.glob("*.deb"):
                    deb.rename(pool / deb.name)  # complete files only: download verified them
            finally:
                shutil.rmtree(partial, ignore_errors=True)
    return [pool / name for name in files]
