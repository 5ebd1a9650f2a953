"""Releases: the app wheel plus the model artifact, pushed to ``releases/<id>/`` and verified there.

A release id is a hash of its contents, so deploying the same app and model twice is a no-op and a
corrupted copy is recognised by its checksums rather than by a timestamp. ``current`` and
``previous`` are symlinks swapped with ``mv -T`` (an atomic rename): the service only ever sees a
whole release, and rollback is one more swap.
"""

from __future__ import annotations

import hashlib
import io
import os
import shlex
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from pyinfra import host
from pyinfra.api import FileUploadCommand, operation

from mlopsdeploy.facts.release import CHECKSUMS, COMPLETE_MARKER, ReleaseIntegrity, Releases
from mlopsdeploy.health import DEFAULT_CANARIES, Canary
from mlopsdeploy.model.manifest import MANIFEST_NAME, read_manifest, sha256_file, verify

APP_WHEEL = "app.whl"
# Fixed so the same app source always builds a byte-identical wheel, hence the same release id.
SOURCE_DATE_EPOCH = "1700000000"


@dataclass(frozen=True)
class ReleaseBundle:
    """What one release consists of, on the control machine.

    + files: path inside the release dir -> local file
    + canaries: the sentences the gate checks, the app's own plus the model manifest's
    """

    id: str
    files: dict[str, Path]
    model_version: str
    canaries: tuple[Canary, ...] = field(default=DEFAULT_CANARIES)

    @property
    def checksums(self) -> str:
        return "".join(f"{sha256_file(path)}  {rel}\n" for rel, path in sorted(self.files.items()))

    @property
    def size_mb(self) -> int:
        return sum(path.stat().st_size for path in self.files.values()) // 2**20 + 1


def _tree_digest(root: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file() and "__pycache__" not in p.parts):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0")
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def build_app_wheel(app_dir: Path, cache: Path) -> Path:
    """The app's wheel, built once per source content (``pip wheel --no-deps``)."""
    out = cache / "app" / _tree_digest(app_dir)
    wheels = sorted(out.glob("*.whl"))
    if wheels:
        return wheels[0]
    out.mkdir(parents=True, exist_ok=True)
    pip_wheel = [
        sys.executable,
        "-m",
        "pip",
        "wheel",
        "--quiet",
        "--no-deps",
        "--no-build-isolation",
    ]
    # Built aside and moved in whole, so a parallel builder never sees a half-written wheel.
    partial = out / f".partial-{os.getpid()}"
    result = subprocess.run(
        [*pip_wheel, "-w", str(partial), str(app_dir)],
        capture_output=True,
        text=True,
        env={**os.environ, "SOURCE_DATE_EPOCH": SOURCE_DATE_EPOCH},
    )
    if result.returncode != 0:
        raise RuntimeError(f"building the app wheel failed:\n{result.stderr[-2000:]}")
    for wheel in partial.glob("*.whl"):
        os.replace(wheel, out / wheel.name)
    partial.rmdir()
    return sorted(out.glob("*.whl"))[0]


def manifest_canaries(manifest: dict) -> tuple[Canary, ...]:
    """The app's canaries plus those recorded in the model manifest (``text`` / ``expected``)."""
    found = list(DEFAULT_CANARIES)
    for entry in manifest.get("canaries", []):
        canary = Canary(str(entry["text"]), str(entry["expected"]))
        if canary not in found:
            found.append(canary)
    return tuple(found)


def build_release(app_dir: Path, model_dir: Path, cache: Path) -> ReleaseBundle:
    """Verify the model against its manifest, build the app wheel, and name the release."""
    problems = verify(model_dir)
    if problems:
        raise ValueError(f"model {model_dir} fails its manifest: {'; '.join(problems[:5])}")
    manifest = read_manifest(model_dir)
    files = {APP_WHEEL: build_app_wheel(app_dir, cache)}
    for rel in [*manifest["files"], MANIFEST_NAME]:
        files[f"model/{rel}"] = model_dir / rel
    sums = "".join(f"{rel}\0{sha256_file(path)}\n" for rel, path in sorted(files.items()))
    return ReleaseBundle(
        id="r-" + hashlib.sha256(sums.encode()).hexdigest()[:12],
        files=files,
        model_version=str(manifest["version"]),
        canaries=manifest_canaries(manifest),
    )


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


def swap_link(base: str, link: str, release_id: str) -> str:
    """Shell that points ``link`` at ``release_id`` with an atomic rename (never a missing link)."""
    b = shlex.quote(base)
    return f"ln -sfn releases/{release_id} {b}/.{link}.new && mv -T {b}/.{link}.new {b}/{link}"


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
