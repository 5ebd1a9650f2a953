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

from mlopsdeploy.deployment.control.bundle import APP_DIR, APP_WHEEL, ReleaseBundle
from mlopsdeploy.deployment.facts.release import (
    CHECKSUMS,
    COMPLETE_MARKER,
    ReleaseIntegrity,
    Releases,
    ReleaseSeal,
)
from mlopsdeploy.deployment.host_commands import swap_link


def release_path(base: str, release_id: str) -> str:
    return f"{base}/releases/{release_id}"


@operation()
def release_staged(base: str, bundle: ReleaseBundle):
    """Make release ``bundle.id`` on the host hold exactly the bundle's files it serves.

    Files that are missing or differ are pushed again, files nobody shipped are deleted, and a
    damaged ``app/`` is unpacked again from the (verified) wheel beside it and swapped in whole.
    ``SHA256SUMS`` and the completion marker are ``release_sealed``'s: the app reads neither, so
    repairing only them is no reason to restart it.

    + base: deploy root on the host
    + bundle: the release to stage

    **Example:**

    .. code:: python

        release_staged(name="Stage release", base="/home/u/mlopsdeploy", bundle=bundle)
    """
    path = release_path(base, bundle.id)
    check = host.get_fact(ReleaseIntegrity, path=path).against(bundle.digests)
    p = shlex.quote(path)
    push = [rel for rel in check.bad if rel in bundle.files]
    # ``app/`` comes from the wheel, or (an app with a spec) is pushed file by file.
    wheel = APP_WHEEL in bundle.files
    in_app = [rel for rel in [*check.bad, *check.extra] if wheel and rel.startswith(f"{APP_DIR}/")]
    stray = [rel for rel in check.extra if not (wheel and rel.startswith(f"{APP_DIR}/"))]
    if not (push or in_app or stray):
        return
    prepare = f"umask 022 && mkdir -p {p} && rm -f {p}/{COMPLETE_MARKER}"
    if stray:
        prepare += " && rm -rf " + " ".join(shlex.quote(f"{path}/{rel}") for rel in stray)
    dirs = sorted({os.path.dirname(f"{path}/{rel}") for rel in push})
    if dirs:
        prepare += " && mkdir -p " + " ".join(shlex.quote(d) for d in dirs)
    yield prepare
    for rel in push:
        yield FileUploadCommand(str(bundle.files[rel]), f"{path}/{rel}")
    if in_app or APP_WHEEL in push:
        fresh = f".{APP_DIR}.new"
        yield (
            f"cd {p} && rm -rf {fresh} && python3 -m zipfile -e {APP_WHEEL} {fresh} && "
            f"rm -rf {APP_DIR} && mv -T {fresh} {APP_DIR}"
        )


@operation()
def release_sealed(base: str, bundle: ReleaseBundle):
    """Write ``SHA256SUMS`` if it is missing or wrong, verify the release with it on the host,
    and mark the release complete (only a complete release is ever listed, switched to or kept).

    + base: deploy root on the host
    + bundle: the release ``release_staged`` just staged
    """
    path = release_path(base, bundle.id)
    seal = host.get_fact(ReleaseSeal, path=path)
    written = seal.checksums == bundle.digests[CHECKSUMS]
    if written and seal.complete:
        return
    p = shlex.quote(path)
    if not written:
        yield f"umask 022 && rm -f {p}/{COMPLETE_MARKER}"
        yield FileUploadCommand(io.StringIO(bundle.checksums), f"{path}/{CHECKSUMS}")
    yield f"cd {p} && sha256sum --quiet -c {CHECKSUMS}"
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
