"""Release operations: push a bundle to ``releases/<id>/``, verify it there, switch, prune.

``current`` and ``previous`` are symlinks swapped with ``mv -T`` (an atomic rename): the service
only ever sees a whole release, and rollback is one more swap.
"""

from __future__ import annotations

import io
import os
import shlex

from pyinfra import host
from pyinfra.api import FileUploadCommand, operation

from mlopsdeploy.deployment.control.bundle import APP_WHEEL, ReleaseBundle
from mlopsdeploy.deployment.facts.release import (
    CHECKSUMS,
    COMPLETE_MARKER,
    ReleaseIntegrity,
    Releases,
)
from mlopsdeploy.deployment.host_commands import swap_link


def release_path(base: str, release_id: str) -> str:
    return f"{base}/releases/{release_id}"


@operation()
def release_staged(base: str, bundle: ReleaseBundle):
    """Push a release and verify its checksums on the host; re-push only files that fail.

    + base: deploy root on the host
    + bundle: the release to stage

    **Example:**

    .. code:: python

        release_staged(name="Stage release", base="/home/u/mlopsdeploy", bundle=bundle)
    """
    path = release_path(base, bundle.id)
    check = host.get_fact(ReleaseIntegrity, path=path)
    if check.state == "ok":
        return
    todo = check.bad if check.state == "corrupt" else sorted(bundle.files)
    dirs = sorted({os.path.dirname(f"{path}/{rel}") for rel in todo})
    yield f"umask 022 && rm -f {shlex.quote(path)}/{COMPLETE_MARKER} && mkdir -p " + " ".join(
        shlex.quote(d) for d in dirs
    )
    for rel in todo:
        yield FileUploadCommand(str(bundle.files[rel]), f"{path}/{rel}")
    yield FileUploadCommand(io.StringIO(bundle.checksums), f"{path}/{CHECKSUMS}")
    p = shlex.quote(path)
    yield f"cd {p} && sha256sum --quiet -c {CHECKSUMS}"
    yield f"cd {p} && rm -rf app && python3 -m zipfile -e {APP_WHEEL} app"
    yield f"touch {p}/{COMPLETE_MARKER}"


@operation()
def current_release(base: str, release_id: str):
    """Point ``current`` at ``release_id`` (atomically), keeping the old one as ``previous``.

    + base: deploy root on the host
    + release_id: a staged, gated release
    """
    index = host.get_fact(Releases, base=base)
    if index.current == release_id:
        return
    if index.current:
        yield swap_link(base, "previous", index.current)
    yield swap_link(base, "current", release_id)


@operation()
def releases_pruned(base: str, keep: int):
    """Delete the oldest complete releases beyond ``keep``, never ``current`` or ``previous``.

    + base: deploy root on the host
    + keep: how many releases to keep (>= 2, so rollback has a target)
    """
    index = host.get_fact(Releases, base=base)
    protected = {rid for rid in (index.current, index.previous) if rid}
    others = [rid for rid in index.ids if rid not in protected]
    room = max(0, keep - len(protected))
    excess = others[: max(0, len(others) - room)]
    if excess:
        yield "rm -rf " + " ".join(shlex.quote(release_path(base, rid)) for rid in excess)
