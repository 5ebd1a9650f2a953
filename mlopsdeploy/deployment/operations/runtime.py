"""The runtime on the host: OS packages and a venv per lock, built from the pinned lock.

Offline mode pushes the control machine's wheelhouse and installs with ``--no-index`` (test VMs
and many course VMs cannot reach an index). Online mode installs the same lock from an index
(e.g. a CPU-only torch index). Either way the installer is uv, pushed as its wheel, and the venv
records the lock hash it was built from, so a broken package is reinstalled on its own instead
of rebuilding the whole venv.

A new lock gets a new venv in ``venvs/<digest>`` beside the serving one, never an update in
place: the release's gate tries it first (``candidate-venv``), and only a passed gate moves the
``venv`` link the workers run from. So a refused release leaves the serving venv as it was, and
each release records the venv it served with, which a rollback goes back to.
"""

from __future__ import annotations

import io
import shlex
from pathlib import Path

from pyinfra import host
from pyinfra.api import FileUploadCommand, operation
from pyinfra.facts.deb import DebPackages

from mlopsdeploy.config import HostConfig
from mlopsdeploy.deployment.control.wheelhouse import Lock
from mlopsdeploy.deployment.facts.runtime import (
    CANDIDATE_VENV,
    LOCK_NAME,
    RELEASE_VENV,
    SERVING_VENV,
    STAMP_NAME,
    VENVS_DIR,
    InstallerVersion,
    LockStamp,
    Venvs,
    VenvState,
)
from mlopsdeploy.deployment.host_commands import point_link

OS_PACKAGES = ("python3", "python3-venv")
# No cache on the host (it would double the venv's 1.2 GB); copies, since the wheelhouse may go.
INSTALL_FLAGS = "--quiet --no-cache --link-mode copy"


def venv_path(cfg: HostConfig) -> str:
    """The serving venv (a link into ``venvs/``): what the app's units run."""
    return f"{cfg.base_dir}/{SERVING_VENV}"


def candidate_venv_path(cfg: HostConfig) -> str:
    """The venv of the release under test (a link into ``venvs/``): what the candidate runs."""
    return f"{cfg.base_dir}/{CANDIDATE_VENV}"


def venv_dir(cfg: HostConfig, digest: str) -> str:
    """The venv built from the lock with hash ``digest``."""
    return f"{cfg.base_dir}/{VENVS_DIR}/{digest}"


def remote_wheelhouse(cfg: HostConfig) -> str:
    return f"{cfg.base_dir}/wheelhouse"


def installer_path(cfg: HostConfig, wheel: Path) -> str:
    """Where the installer binary lands when its wheel (``uv-<version>-...whl``) is unpacked."""
    name, version = wheel.name.split("-")[:2]
    return f"{cfg.base_dir}/installer/{name}-{version}.data/scripts/{name}"


@operation()
def installer(cfg: HostConfig, wheel: Path):
    """Unpack the installer (uv) from its wheel on the host, unless that version is there.

    + cfg: the host's configuration
    + wheel: the installer's wheel for the host's machine
    """
    name, version = wheel.name.split("-")[:2]
    binary = installer_path(cfg, wheel)
    if host.get_fact(InstallerVersion, path=binary) == f"{name} {version}":
        return
    target = shlex.quote(f"{cfg.base_dir}/installer")
    yield f"rm -rf {target} && mkdir -p {target}"
    yield FileUploadCommand(str(wheel), f"{cfg.base_dir}/installer/{wheel.name}")
    yield (
        f"cd {target} && python3 -m zipfile -e {shlex.quote(wheel.name)} . && "
        f"rm {shlex.quote(wheel.name)} && chmod +x {shlex.quote(binary)}"
    )


@operation()
def os_packages(packages: tuple[str, ...] = OS_PACKAGES):
    """Install missing Debian packages; ``apt-get update`` only runs when something is missing.

    + packages: Debian package names
    """
    installed = host.get_fact(DebPackages)
    missing = [p for p in packages if p not in installed]
    if missing:
        yield "sudo -n env DEBIAN_FRONTEND=noninteractive apt-get update -q"
        yield (
            "sudo -n env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "
            + " ".join(shlex.quote(p) for p in missing)
        )


def _pip_source(cfg: HostConfig) -> str:
    if cfg.install == "offline":
        return f"--no-index --find-links {shlex.quote(remote_wheelhouse(cfg))}"
    source = f"--index-url {shlex.quote(cfg.index_url)}" if cfg.index_url else ""
    return " ".join(
        [source, *(f"--extra-index-url {shlex.quote(u)}" for u in cfg.extra_index_urls)]
    )


def _push_wheelhouse(cfg: HostConfig, lock: Lock, wheelhouse: Path):
    target = remote_wheelhouse(cfg)
    partial = shlex.quote(target + ".partial")
    yield f"rm -rf {partial} && mkdir -p {partial}"
    for wheel in sorted(wheelhouse.glob("*.whl")):
        yield FileUploadCommand(str(wheel), f"{target}.partial/{wheel.name}")
    yield FileUploadCommand(io.StringIO(lock.text), f"{target}.partial/{LOCK_NAME}")
    yield FileUploadCommand(io.StringIO(lock.digest + "\n"), f"{target}.partial/{STAMP_NAME}")
    yield f"rm -rf {shlex.quote(target)} && mv {partial} {shlex.quote(target)}"


@operation()
def venv(cfg: HostConfig, lock: Lock, installer_wheel: Path, wheelhouse: Path | None = None):
    """Make the venv match ``lock``: build it, update it, or reinstall just its broken packages.

    + cfg: the host's configuration (paths, offline/online, index URLs)
    + lock: the pinned requirements and their hash
    + installer_wheel: the uv wheel the ``installer`` operation unpacked on the host
    + wheelhouse: local wheelhouse dir (offline mode), pushed only when the host lacks it

    **Example:**

    .. code:: python

        venv(name="Runtime venv", cfg=cfg, lock=lock, installer_wheel=uv, wheelhouse=wheels)
    """
    path = venv_dir(cfg, lock.digest)
    report = host.get_fact(VenvState, venv=path)
    if report.stamp == lock.digest and not report.broken:
        return
    if cfg.install == "offline":
        if wheelhouse is None:
            raise ValueError("offline install needs a wheelhouse")
        if host.get_fact(LockStamp, path=remote_wheelhouse(cfg)) != lock.digest:
            yield from _push_wheelhouse(cfg, lock, wheelhouse)
        lock_file = f"{remote_wheelhouse(cfg)}/{LOCK_NAME}"
    else:
        lock_file = f"{cfg.base_dir}/{LOCK_NAME}"
        yield FileUploadCommand(io.StringIO(lock.text), lock_file)
    p = shlex.quote(path)
    install = (
        f"{shlex.quote(installer_path(cfg, installer_wheel))} pip install {INSTALL_FLAGS} "
        f"--python {p}/bin/python {_pip_source(cfg)}"
    )
    if report.stamp == lock.digest:
        pins = {line.split("==")[0]: line for line in lock.text.split()}
        broken = " ".join(shlex.quote(pins.get(name, name)) for name in report.broken)
        # The stamp's time is where the fact starts hashing: the fresh files are known good.
        yield f"{install} --no-deps --reinstall {broken} && touch {p}/{STAMP_NAME}"
        return
    yield (
        f"mkdir -p {shlex.quote(f'{cfg.base_dir}/{VENVS_DIR}')} && "
        f"{{ {p}/bin/python -c pass 2>/dev/null || python3 -m venv --without-pip --clear {p}; }}"
    )
    yield f"{install} -r {shlex.quote(lock_file)}"
    yield f"cp {shlex.quote(lock_file)} {p}/{LOCK_NAME} && echo {lock.digest} > {p}/{STAMP_NAME}"


@operation()
def venv_moved_aside(cfg: HostConfig):
    """Turn a plain ``venv`` directory (the layout before per-lock venvs) into ``venvs/<lock>``
    behind a ``venv`` link, so the serving app keeps running what it runs.

    A plain venv without a stamp was never finished: it is removed, and the deploy builds one.

    + cfg: the host's configuration
    """
    index = host.get_fact(Venvs, base=cfg.base_dir)
    if index.legacy is None:
        return
    b = shlex.quote(cfg.base_dir)
    if not index.legacy:
        yield f"rm -rf {b}/{SERVING_VENV}"
        return
    moved = f"{b}/{VENVS_DIR}/{index.legacy}"
    yield (
        f"mkdir -p {b}/{VENVS_DIR} && rm -rf {moved} && mv -T {b}/{SERVING_VENV} {moved} && "
        f"ln -sfn {VENVS_DIR}/{index.legacy} {b}/{SERVING_VENV}"
    )


def serve_venv_command(cfg: HostConfig, digest: str) -> str:
    """Point the serving ``venv`` link at ``venvs/<digest>`` (workers pick it up on restart)."""
    return point_link(cfg.base_dir, SERVING_VENV, f"{VENVS_DIR}/{digest}")


def candidate_venv_command(cfg: HostConfig, digest: str) -> str:
    """Point ``candidate-venv`` at ``venvs/<digest>``, for the gate's candidate."""
    return point_link(cfg.base_dir, CANDIDATE_VENV, f"{VENVS_DIR}/{digest}")


@operation()
def venv_serving(cfg: HostConfig, digest: str):
    """Move the ``venv`` link the workers run from to ``venvs/<digest>`` (after the gate).

    + cfg: the host's configuration
    + digest: the lock hash of a built venv
    """
    if host.get_fact(Venvs, base=cfg.base_dir).serving != digest:
        yield serve_venv_command(cfg, digest)


@operation()
def venv_recorded(cfg: HostConfig, release_id: str, digest: str):
    """Record in ``releases/<id>/.venv`` that the release serves on ``venvs/<digest>``.

    A rollback to that release goes back to this venv, and pruning keeps it while the release
    is kept. Not an input of the app: changing it restarts nothing.

    + cfg: the host's configuration
    + release_id: the release now current
    + digest: the venv it serves with
    """
    if host.get_fact(Venvs, base=cfg.base_dir).recorded.get(release_id) != digest:
        link = f"releases/{release_id}/{RELEASE_VENV}"
        yield point_link(cfg.base_dir, link, f"../../{VENVS_DIR}/{digest}")


@operation()
def venvs_pruned(cfg: HostConfig):
    """Delete the venvs that neither serve nor belong to a kept release (run after the
    releases were pruned, so a venv goes with the last release that served on it).

    + cfg: the host's configuration
    """
    index = host.get_fact(Venvs, base=cfg.base_dir)
    kept = {index.serving, *index.recorded.values()}
    unused = [name for name in index.present if name not in kept]
    if unused:
        yield "rm -rf " + " ".join(shlex.quote(venv_dir(cfg, name)) for name in unused)
