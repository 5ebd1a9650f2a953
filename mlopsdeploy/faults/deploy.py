"""Faults on what the deploy itself owns: the release's files, the venv's files, the host lock.

The serving app does not notice most of these until its next start (or at all), which is why
only the deploy can repair them: it compares every file of the release with the bundle, every
recorded file of the venv with its hash, and takes one lock per host. ``Recovery(hidden=True)``
marks those the app keeps serving through, so the suite redeploys instead of waiting for an
outage that never comes.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass

from mlopsdeploy.deployment.host_commands import HOST_LOCK_OWNER, hold_host_lock
from mlopsdeploy.faults.base import Fault, Recovery, Target, poll_guest


def _release(target: Target) -> str:
    """The serving release's dir (``current``), where the app's code and model live."""
    return f"{target.paths.root}/current"


@dataclass
class DamageAppCode(Fault):
    """Append a syntax error to a module of the serving app's unpacked code, then restart it."""

    module: str = "app/app/routes.py"

    name = "app-code-damaged"
    breaks = "one module of the serving release's unpacked app code damaged; the app restarted"
    recovery = Recovery()

    def inject(self, target: Target) -> None:
        path = shlex.quote(f"{_release(target)}/{self.module}")
        target.guest.sh(f"test -f {path} && echo 'damaged(' >> {path}")
        target.guest.sh(target.service.signal_main("KILL"))


class DeleteAppDir(Fault):
    """Delete the serving release's whole unpacked ``app/`` (its wheel stays), then restart."""

    name = "app-dir-deleted"
    breaks = "the serving release's unpacked app/ deleted (app.whl left); the app restarted"
    recovery = Recovery()

    def inject(self, target: Target) -> None:
        target.guest.sh(f"rm -r {shlex.quote(_release(target))}/app")
        target.guest.sh(target.service.signal_main("KILL"))


class DeleteChecksums(Fault):
    """Delete the serving release's SHA256SUMS: the app serves on, only the deploy sees it."""

    name = "checksums-deleted"
    breaks = "the serving release's SHA256SUMS deleted (the app keeps serving)"
    recovery = Recovery(hidden=True)

    def inject(self, target: Target) -> None:
        target.guest.sh(f"rm {shlex.quote(_release(target))}/SHA256SUMS")


@dataclass
class ChangePackageFile(Fault):
    """Change one byte of an installed package's module, keeping its size and metadata."""

    package: str = "fastapi"

    name = "venv-file-changed"
    breaks = "one file of an installed package changed in place (same size; the app serves on)"
    recovery = Recovery(hidden=True)

    def inject(self, target: Target) -> None:
        python = f"{target.paths.venv}/bin/python"
        flip = (
            "import importlib.util, sys; p = importlib.util.find_spec(sys.argv[1]).origin;"
            " b = bytearray(open(p, 'rb').read()); b[0:1] = b'#' if b[0:1] != b'#' else b' ';"
            " open(p, 'wb').write(b)"
        )
        target.guest.sh(shlex.join([python, "-c", flip, self.package]))


@dataclass
class ConcurrentDeploy(Fault):
    """Another deploy holds the host lock for ``seconds``: the recovery deploy must wait it out."""

    seconds: int = 20

    name = "concurrent-deploy"
    breaks = "a second deploy running on the host (its lock held) when the deploy starts"
    recovery = Recovery(hidden=True)

    def inject(self, target: Target) -> None:
        owner = "fault: concurrent deploy"
        hold = hold_host_lock(target.paths.root, self._scope(target), owner, 0)
        # The holder's stdin is the sleep's pipe: the lock lasts as long as the sleep.
        target.guest.sh(
            f"setsid sh -c {shlex.quote(f'sleep {self.seconds} | sh -c {shlex.quote(hold)}')}"
            " </dev/null >/dev/null 2>&1 &"
        )
        owner_file = shlex.quote(f"{target.paths.root}/{HOST_LOCK_OWNER}")
        poll_guest(target.guest, f"grep -q 'fault: concurrent' {owner_file}", 10)

    @staticmethod
    def _scope(target: Target) -> str:
        return "user" if target.service.user_scope else "system"


class InterruptedDeploy(Fault):
    """What a deploy killed while re-staging the serving release leaves behind, then a restart.

    The release's completion marker gone, a model file half rewritten, the wheel half unpacked
    into ``.app.new`` and a link swap half done (``.current.new``): the state a SIGKILL at those
    steps leaves, reproduced without racing a real deploy.
    """

    name = "deploy-interrupted"
    breaks = (
        "a deploy killed mid-stage: release unmarked, a model file truncated, app half unpacked"
    )
    recovery = Recovery()

    def inject(self, target: Target) -> None:
        release = shlex.quote(_release(target))
        root = shlex.quote(target.paths.root)
        target.guest.sh(
            f"cd {release} && rm -f .complete && truncate -s 100 model/config.json && "
            "mkdir -p .app.new/app && cp app/app/__init__.py .app.new/app/ && "
            f"ln -sfn releases/none {root}/.current.new"
        )
        target.guest.sh(target.service.signal_main("KILL"))
