"""The course-VM root filesystem: built once with mmdebstrap, cached by the hash of its recipe.

Machines boot copy-on-write overlays of it, so the image itself is never written after the
build. It lives in images/<digest>/rootfs; a recipe change (packages, mirrors, the customize
hook, the default key) gives a new digest and therefore a fresh build. A build goes to a temp
dir and is renamed into place only when complete, under an flock, so concurrent callers
(pytest-xdist workers, the CLI) wait for one build instead of racing or seeing half an image.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shlex
import shutil
import subprocess
import time
from dataclasses import asdict, dataclass, field
from functools import cached_property
from importlib import resources
from pathlib import Path

from mlopsdeploy.testbed.keys import default_key, public_key, public_key_path
from mlopsdeploy.testbed.state import State

PACKAGES = (
    "systemd-sysv",
    "dbus",
    "libpam-systemd",
    "libnss-myhostname",
    "openssh-server",
    "python3",
    "python3-venv",
    "sudo",
    "ca-certificates",
    "iproute2",
    "procps",
)
#: Debian releases a test VM can run, and the python3 each ships: users' VMs are not all
#: copies of the control machine (Debian 12), and the deploy must cope with, or refuse, theirs.
RELEASES = {"bullseye": "3.9", "bookworm": "3.11", "trixie": "3.13"}
DEFAULT_RELEASE = "bookworm"


def release_mirrors(suite: str) -> tuple[str, ...]:
    """The archive, its updates and its security suite, from Debian's own mirrors."""
    return (
        f"deb http://deb.debian.org/debian {suite} main",
        f"deb http://deb.debian.org/debian {suite}-updates main",
        f"deb http://deb.debian.org/debian-security {suite}-security main",
    )


MIRRORS = release_mirrors(DEFAULT_RELEASE)
#: Documentation nobody reads on a test VM; dropping it keeps the image and its build lean.
DPKG_EXCLUDES = (
    "/usr/share/man/*",
    "/usr/share/doc/*",
    "/usr/share/info/*",
    "/usr/share/locale/*",
)
DPKG_INCLUDES = ("/usr/share/doc/*/copyright",)


@dataclass(frozen=True)
class Recipe:
    """Everything that decides the image's content; its digest names the cached build.

    Keep it that way: an option that changes the content belongs here, not hard-coded in the
    mmdebstrap command line, or a cached image would outlive the change.
    """

    suite: str = "bookworm"
    variant: str = "minbase"
    packages: tuple[str, ...] = PACKAGES
    mirrors: tuple[str, ...] = MIRRORS
    dpkg_excludes: tuple[str, ...] = DPKG_EXCLUDES
    dpkg_includes: tuple[str, ...] = DPKG_INCLUDES
    user: str = "student-admin"
    uid: int = 1000
    customize_script: str = field(default_factory=lambda: _customize_script().read_text())

    @classmethod
    def for_release(cls, suite: str) -> Recipe:
        """The course-VM recipe on Debian release ``suite`` (one of RELEASES)."""
        if suite not in RELEASES:
            raise ValueError(f"unknown testbed image {suite!r}; choose one of {sorted(RELEASES)}")
        return cls(suite=suite, mirrors=release_mirrors(suite))

    def digest(self, default_public_key: str) -> str:
        blob = json.dumps({**asdict(self), "key": default_public_key}, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _customize_script() -> Path:
    return Path(str(resources.files(__package__).joinpath("customize.sh")))


class Image:
    """The image for a recipe in a state dir; `ensure()` builds it unless already cached."""

    def __init__(self, state: State | None = None, recipe: Recipe | None = None) -> None:
        self.state = state or State.default()
        self.recipe = recipe or Recipe()

    @classmethod
    def for_release(cls, suite: str, state: State | None = None) -> Image:
        """The image of Debian release ``suite`` (``bookworm``, ``trixie``, ``bullseye``)."""
        return cls(state, Recipe.for_release(suite))

    @cached_property
    def default_key(self) -> Path:
        """The shared default private key the image trusts (created on first use)."""
        return default_key(self.state)

    @cached_property
    def digest(self) -> str:
        return self.recipe.digest(public_key(self.default_key))

    @property
    def path(self) -> Path:
        return image_dir(self.state, self.digest)

    @property
    def rootfs(self) -> Path:
        return self.path / "rootfs"

    def exists(self) -> bool:
        return (self.path / "image.json").is_file()

    def info(self) -> dict[str, object]:
        """What the build recorded: digest, build_seconds, size_bytes, built_at."""
        data: dict[str, object] = json.loads((self.path / "image.json").read_text())
        return data

    def ensure(self, rebuild: bool = False) -> Image:
        """Build the image unless a complete build of this recipe is cached; return self.

        A cached image is returned without the build lock, so a machine of one release never
        waits for another release's build to finish.
        """
        if not rebuild and self.exists():
            return self
        self.state.images.mkdir(parents=True, exist_ok=True)
        with open(self.state.images / ".build.lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if rebuild or not self.exists():
                self._build()
                self._prune()
        return self

    def _prune(self) -> None:
        """Delete builds no registered machine boots from: older recipes of this release,
        replaced rebuilds, crashed builds. Other releases' images stay: they are current too.
        Runs under the build lock, so no build is in progress."""
        with self.state.registry.locked() as records:
            in_use = {record.image for record in records.values()}
            for entry in self.state.images.iterdir():
                digest = entry.name.split(".")[0]
                current = entry.name == self.digest
                this_release = _built_suite(entry) in (None, self.recipe.suite)
                if entry.is_dir() and not current and digest not in in_use and this_release:
                    shutil.rmtree(entry)

    def _build(self) -> None:
        tmp = self.state.images / f".build-{self.digest}"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        log = tmp / "build.log"
        started = time.monotonic()
        with log.open("w") as out:
            result = subprocess.run(
                self._mmdebstrap_argv(tmp / "rootfs"),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                check=False,
            )
        if result.returncode != 0:
            tail = log.read_text().splitlines()[-20:]
            raise RuntimeError(
                f"mmdebstrap failed ({result.returncode}), log {log}:\n" + "\n".join(tail)
            )
        seconds = time.monotonic() - started
        info = {
            "digest": self.digest,
            "build_seconds": round(seconds, 1),
            "size_bytes": _disk_usage(tmp / "rootfs"),
            "built_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "recipe": {k: v for k, v in asdict(self.recipe).items() if k != "customize_script"},
        }
        (tmp / "image.json").write_text(json.dumps(info, indent=1))
        if self.path.exists():
            # A forced rebuild: machines still booted from the old build keep it until pruned.
            self.path.rename(self.path.with_name(f"{self.digest}.replaced-{os.getpid()}"))
        tmp.rename(self.path)

    def _mmdebstrap_argv(self, target: Path) -> list[str]:
        r = self.recipe
        # mmdebstrap passes the target dir as "$1"; everything else is quoted literally.
        script, key = str(_customize_script()), str(public_key_path(self.default_key))
        hook = " ".join(["sh", shlex.quote(script), '"$1"', shlex.join([key, r.user, str(r.uid)])])
        return [
            "mmdebstrap",
            "--mode=root",
            f"--variant={r.variant}",
            f"--include={','.join(r.packages)}",
            *(f"--dpkgopt=path-exclude={pattern}" for pattern in r.dpkg_excludes),
            *(f"--dpkgopt=path-include={pattern}" for pattern in r.dpkg_includes),
            f"--customize-hook={hook}",
            r.suite,
            str(target),
            *r.mirrors,
        ]


def image_dir(state: State, digest: str) -> Path:
    return state.images / digest


def _built_suite(entry: Path) -> str | None:
    """The release a cached build is of (None: a crashed or unrecorded build)."""
    try:
        info = json.loads((entry / "image.json").read_text())
    except (OSError, ValueError):
        return None
    suite = info.get("recipe", {}).get("suite")
    return str(suite) if suite else None


def _disk_usage(path: Path) -> int:
    out = subprocess.run(["du", "-sb", str(path)], capture_output=True, text=True, check=True)
    return int(out.stdout.split()[0])
