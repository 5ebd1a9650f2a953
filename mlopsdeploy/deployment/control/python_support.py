"""Whether the host's Python can run the pinned stack, decided on the control machine.

A VM is not always a copy of the control machine: course VMs run Ubuntu 22.04 (Python 3.10),
others Debian 13 (3.13). The pins come from the control machine's environment, so a host whose
Python those pins reject must be refused before anything is pushed or changed, naming its
version and the versions that would work, instead of failing half way through an install.
"""

from __future__ import annotations

import email
import email.message
import importlib.metadata as md
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name

#: Minor versions a host may plausibly run (Debian 11-13, Ubuntu 20.04-26.04).
KNOWN_VERSIONS = ("3.8", "3.9", "3.10", "3.11", "3.12", "3.13", "3.14")

#: Distributions the stack needs only on Pythons other than the control machine's, so they are
#: not installed here to read a version from; pinned here instead (a lock is always pinned).
OTHER_PYTHON_PINS = {"audioop-lts": "0.2.2"}


class UnsupportedPython(RuntimeError):
    """The host's Python cannot run the pinned stack; the message says why and what would."""


# PEP 508: a requirement line starts with the distribution's name.
_REQUIREMENT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


class Installed:
    """This environment's distributions by canonical name, found without reading metadata.

    ``md.distribution(name)`` searches every sys.path entry for each name (~300 names, most of
    them extras that are not installed), a parsed ``Requirement`` costs as much, and
    ``.metadata`` parses the whole METADATA file, long description included, on every access:
    together 4-6 s of a no-op deploy at load 19. Here the ``.dist-info``/``.egg-info``
    directories of sys.path are listed once (the first on sys.path wins, as for
    ``md.distribution``) and only the metadata's headers are parsed.
    """

    def __init__(self) -> None:
        self._found: dict[str, md.Distribution] = {}
        for entry in sys.path:
            try:
                names = sorted(os.listdir(entry or "."))
            except OSError:
                continue
            for name in names:
                stem = name.removesuffix(".dist-info").removesuffix(".egg-info")
                if stem != name:
                    key = canonicalize_name(stem.partition("-")[0])
                    self._found.setdefault(key, md.PathDistribution(Path(entry or ".") / name))

    def get(self, name: str) -> md.Distribution | None:
        return self._found.get(canonicalize_name(name))

    @staticmethod
    def headers(dist: md.Distribution) -> email.message.Message:
        """The metadata's header fields (Name, Version, Requires-Python, Requires-Dist, ...)."""
        text = dist.read_text("METADATA") or dist.read_text("PKG-INFO") or ""
        return email.message_from_string(text.partition("\n\n")[0])

    @classmethod
    def requires(cls, dist: md.Distribution, headers: email.message.Message) -> list[str]:
        """Its requirement lines: ``Requires-Dist``, or an ``.egg-info``'s requires.txt."""
        if dist.read_text("METADATA") is None:
            return list(dist.requires or ())
        return headers.get_all("Requires-Dist") or []


def requirement_name(line: str) -> str:
    """The canonical distribution name a requirement line (``Requires-Dist``) names."""
    match = _REQUIREMENT_NAME.match(line.strip())
    return canonicalize_name(match.group() if match else Requirement(line).name)


def requires_python(root: str) -> dict[str, SpecifierSet]:
    """``Requires-Python`` of every distribution in ``root``'s installed closure (any marker)."""
    installed = Installed()
    root_dist = installed.get(root)
    if root_dist is None:
        raise md.PackageNotFoundError(root)
    found: dict[str, SpecifierSet] = {}
    pending, seen = [root_dist], {str(canonicalize_name(root))}
    while pending:
        dist = pending.pop()
        headers = installed.headers(dist)
        spec = headers["Requires-Python"]
        if spec:
            key = canonicalize_name(headers["Name"])
            found[f"{key}=={headers['Version']}"] = SpecifierSet(spec)
        for line in installed.requires(dist, headers):
            name = requirement_name(line)
            if name in seen or name in OTHER_PYTHON_PINS:
                continue
            seen.add(name)
            needed = installed.get(name)
            if needed is not None:  # else an extra or another platform's, not in the lock
                pending.append(needed)
    return found


def supported_versions(specs: dict[str, SpecifierSet]) -> list[str]:
    """The KNOWN_VERSIONS every one of ``specs`` accepts."""
    return [v for v in KNOWN_VERSIONS if all(s.contains(f"{v}.0") for s in specs.values())]


def check_python(version: str, root: str) -> None:
    """Raise UnsupportedPython when a pin of ``root``'s stack rejects Python ``version``."""
    specs = requires_python(root)
    rejecting = [
        f"{pin} needs Python {spec}"
        for pin, spec in sorted(specs.items())
        if not spec.contains(f"{version}.0")
    ]
    if rejecting:
        shown = ", ".join(rejecting[:3]) + (
            f" and {len(rejecting) - 3} more" if len(rejecting) > 3 else ""
        )
        raise UnsupportedPython(
            f"the host's Python {version} cannot run the pinned stack ({shown}); "
            f"its pins allow Python {describe(supported_versions(specs))}"
        )


def describe(versions: list[str]) -> str:
    """``3.11-3.14`` for a run of versions, ``none of 3.8-3.14`` for none."""
    if not versions:
        return f"none of {KNOWN_VERSIONS[0]}-{KNOWN_VERSIONS[-1]}"
    return versions[0] if len(versions) == 1 else f"{versions[0]}-{versions[-1]}"


def other_python_pin(requirement: Requirement, version: str) -> str:
    """The pinned version of a distribution the control machine lacks but Python ``version``
    needs; UnsupportedPython naming it when there is no pin for it."""
    name = canonicalize_name(requirement.name)
    pin = OTHER_PYTHON_PINS.get(name)
    if pin is None or not requirement.specifier.contains(pin):
        raise UnsupportedPython(
            f"the host's Python {version} needs {requirement}, which the control machine's "
            f"environment does not have, so its version cannot be pinned"
        )
    return pin


#: Legacy manylinux names and the glibc each stands for; older wheels carry only these.
LEGACY_MANYLINUX = {"manylinux2014": (2, 17), "manylinux2010": (2, 12), "manylinux1": (2, 5)}


def manylinux_platforms(glibc: str, machine: str) -> list[str]:
    """Every manylinux tag a host with ``glibc`` (``2.41``) accepts, newest first.

    ``pip download --platform`` matches tags literally: given only the host's own
    ``manylinux_2_41`` it finds none of the ``manylinux_2_28`` wheels that host happily runs.
    """
    major, minor = (int(part) for part in (glibc or "2.17").split(".")[:2])
    tags = [f"manylinux_{major}_{m}_{machine}" for m in range(minor, 4, -1)]
    tags += [
        f"{name}_{machine}" for name, need in LEGACY_MANYLINUX.items() if need <= (major, minor)
    ]
    return tags


def version_specific(lock_text: str) -> list[str]:
    """The pins whose wheel here is built for this CPython only (``cp311-cp311``).

    Pure (``none-any``) and stable-ABI (``abi3``) wheels run on later Pythons too, so only these
    can lack a wheel for the host's Python: checking just them keeps the refusal fast.
    """
    pins = []
    for pin in lock_text.split():
        try:
            wheel = md.distribution(pin.partition("==")[0]).read_text("WHEEL") or ""
        except md.PackageNotFoundError:
            pins.append(pin)  # pinned for another Python only: nothing here to judge it by
            continue
        tags = [
            line.partition(":")[2].strip() for line in wheel.splitlines() if line.startswith("Tag:")
        ]
        if not any(tag.endswith("-none-any") or "-abi3-" in tag for tag in tags):
            pins.append(pin)
    return pins


def check_wheels(lock_text: str, version: str, platforms: list[str]) -> None:
    """Raise UnsupportedPython naming a pin with no wheel for CPython ``version`` on ``platforms``.

    A dry run of pip's resolver over the version-specific pins only: it reads the indexes'
    listings (no wheel is downloaded) and fails on the first pin that has no matching file.
    """
    pins = version_specific(lock_text)
    if not pins:
        return
    with tempfile.TemporaryDirectory(prefix="mlopsdeploy-wheels-") as tmp:
        argv = [sys.executable, "-m", "pip", "install", "--quiet", "--dry-run", "--no-deps"]
        argv += ["--ignore-installed", "--target", tmp, "--only-binary=:all:"]
        argv += ["--implementation=cp", f"--python-version={version}"]
        argv += [f"--platform={tag}" for tag in platforms]
        result = subprocess.run([*argv, *pins], capture_output=True, text=True, check=False)
    if result.returncode == 0:
        return
    missing = re.search(
        r"(?:No matching distribution found for|Cannot install) (\S+)", result.stderr
    )
    if missing is None:
        raise RuntimeError(f"checking wheels for Python {version} failed:\n{result.stderr[-2000:]}")
    here = f"{sys.version_info.major}.{sys.version_info.minor}"
    raise UnsupportedPython(
        f"the host's Python {version} has no wheel of {missing.group(1)} for "
        f"{platforms[0]} in the indexes the control machine reaches; Python {here} (the "
        "control machine's) has every wheel of the pinned stack"
    )
