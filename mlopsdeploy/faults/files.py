"""Faults on the files a release runs from: venv, model weights, and the disk they live on.

Damaging a file does not hurt a process that already loaded it, so the venv and model faults
also kill the app (as its next crash or reboot would): the damage then shows the way a user
meets it, and systemd's restarts alone cannot repair it.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass

from mlopsdeploy.faults.base import Fault, Recovery, Target, WhileActive

#: The deploy's disk-space refusal (its own words, or the OS's ENOSPC text).
NO_SPACE = r"(?i)(disk|space|ENOSPC)"

_SCRATCH = "/run/mlopsdeploy-fault-disk"


@dataclass
class CorruptVenv(Fault):
    """Delete an installed package's code but keep its metadata, so `pip list` still shows it."""

    package: str = "fastapi"

    name = "venv-corrupt"
    breaks = (
        "an installed package's code deleted from the venv (its metadata left behind), then the"
        " app restarted: it cannot import"
    )
    recovery = Recovery()

    def inject(self, target: Target) -> None:
        python = f"{target.paths.venv}/bin/python"
        remove = (
            "import importlib.util, shutil, sys;"
            " shutil.rmtree(importlib.util.find_spec(sys.argv[1]).submodule_search_locations[0])"
        )
        target.guest.sh(shlex.join([python, "-c", remove, self.package]))
        target.guest.sh(target.service.signal_main("KILL"))


#: The file a model is served from, in the app's order of preference (app.onnx_classifier):
#: what a damaged model looks like depends on which runtime the host runs.
SERVED_WEIGHTS = ("model.int8.onnx", "model.onnx", "model.safetensors")


@dataclass
class DamageModel(Fault):
    """Overwrite the head of the weights file (`delete=False`) or delete the file outright.

    The weights file is `weights`, else the first of SERVED_WEIGHTS the release holds: the
    one the app loads. sudo, because a careful deploy makes release files read-only and a
    failing disk does not ask for permission.
    """

    delete: bool = False
    weights: str | None = None

    breaks = (
        "the model's weights file damaged (header overwritten) or deleted, then the app restarted"
    )
    recovery = Recovery()

    def __post_init__(self) -> None:
        self.name = "model-delete" if self.delete else "model-corrupt"

    def inject(self, target: Target) -> None:
        names = [self.weights] if self.weights else SERVED_WEIGHTS
        paths = " ".join(shlex.quote(f"{target.paths.model_dir}/{name}") for name in names)
        found = f'for f in {paths}; do test -f "$f" && break; done; test -f "$f"'
        if self.delete:
            target.guest.sh(f'{found} && sudo -n rm "$f"')
        else:
            target.guest.sh(
                f'{found} && sudo -n dd if=/dev/zero of="$f" bs=4096 count=1 conv=notrunc'
            )
        target.guest.sh(target.service.signal_main("KILL"))


class FillDisk(Fault):
    """Leave the deploy root's filesystem with no room: every write there fails with ENOSPC.

    A small tmpfs is stacked over the deploy root as an overlayfs upper layer: everything
    already there stays readable (the serving release keeps running), `df` reports the tmpfs's
    few free blocks, and any new file lands in — and overflows — the tmpfs. To the deploy this is
    a full disk; yet nothing is written to the real disk, which on the testbed is the control
    machine's own. `undo` unmounts both and the disk is as it was. The upper layer belongs to
    the deploy user, as the root dir does: an overlay's root takes its owner from that layer.
    """

    name = "disk-full"
    breaks = "the filesystem holding the deploy root, full: no new file fits (tmpfs overlay, 1 MiB)"
    recovery = Recovery(
        while_active=WhileActive(deploy_error=NO_SPACE, new_release=True, local_serves=True)
    )

    def inject(self, target: Target) -> None:
        root = shlex.quote(target.paths.root)
        layers = f"lowerdir={root},upperdir={_SCRATCH}/upper,workdir={_SCRATCH}/work"
        target.guest.sh(
            f"sudo -n mkdir -p {_SCRATCH}"
            f" && sudo -n mount -t tmpfs -o size=1m,mode=0700 mlopsdeploy-fault {_SCRATCH}"
            f' && sudo -n install -d -o "$(id -u)" -g "$(id -g)" -m 0700 {_SCRATCH}/upper'
            f" && sudo -n mkdir {_SCRATCH}/work"
            f" && sudo -n mount -t overlay mlopsdeploy-fault -o {layers} {root}"
        )

    def undo(self, target: Target) -> None:
        root = shlex.quote(target.paths.root)
        for mount in (root, _SCRATCH):
            target.guest.sh(f"! mountpoint -q {mount} || sudo -n umount --lazy {mount}")
