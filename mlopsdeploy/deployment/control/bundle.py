"""The release bundle, built on the control machine: the app wheel plus the model, named by content.

A release id is a hash of its contents, so deploying the same app and model twice is a no-op and
a corrupted copy on the host is recognised by its checksums rather than by a timestamp.
"""

from __future__ import annotations

import hashlib
import importlib.metadata as md
import json
import os
import subprocess
import sys
import zipfile
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from packaging.requirements import Requirement

from mlopsdeploy.deployment import launch
from mlopsdeploy.deployment.control.appspec import LAUNCHER, AppSpec
from mlopsdeploy.deployment.control.appspec_load import load_app_spec
from mlopsdeploy.deployment.control.probe import DEFAULT_CANARIES, Canary
from mlopsdeploy.deployment.control.wheelhouse import APP_DISTRIBUTION
from mlopsdeploy.deployment.facts.release import CHECKSUMS
from mlopsdeploy.model.manifest import (
    MANIFEST_NAME,
    read_manifest,
    runtime_files,
    serving_runtime,
    sha256_file,
    verify,
)

APP_WHEEL = "app.whl"
# The wheel is unpacked beside itself: the service imports the app from here (its PYTHONPATH).
APP_DIR = "app"
# Fixed so the same app source always builds a byte-identical wheel, hence the same release id.
SOURCE_DATE_EPOCH = "1700000000"


@dataclass(frozen=True)
class ReleaseBundle:
    """What one release consists of, on the control machine.

    + files: path inside the release dir -> local file
    + canaries: the sentences the gate checks, the app's own plus the model manifest's
    + spec: the app's spec (None: the bundled app); its checks replace the canaries
    + requirements: what the host's venv installs (None: the spec's, or the app's own)
    """

    id: str
    files: dict[str, Path]
    model_version: str
    canaries: tuple[Canary, ...] = field(default=DEFAULT_CANARIES)
    spec: AppSpec | None = None
    requirements: tuple[str, ...] | None = None
    hashed: dict[str, str] = field(default_factory=dict, repr=False, compare=False)
    """sha256 of files already hashed while building (the verified model files), by path."""

    @cached_property
    def content(self) -> dict[str, str]:
        """sha256 of every file a staged release serves, by path inside the release dir.

        That is the pushed files plus the app as unpacked from its wheel, which is what the
        service really imports (its PYTHONPATH), so damage there is seen too.
        """
        found = {rel: self.hashed.get(rel) or sha256_file(path) for rel, path in self.files.items()}
        if APP_WHEEL in self.files:
            with zipfile.ZipFile(self.files[APP_WHEEL]) as wheel:
                for info in wheel.infolist():
                    if not info.is_dir():
                        digest = hashlib.sha256(wheel.read(info)).hexdigest()
                        found[f"{APP_DIR}/{info.filename}"] = digest
        return found

    @property
    def checksums(self) -> str:
        """SHA256SUMS for ``sha256sum -c`` on the host: every file of the release but itself."""
        return "".join(f"{digest}  {rel}\n" for rel, digest in sorted(self.content.items()))

    @property
    def digests(self) -> dict[str, str]:
        """What the release dir must hold exactly: ``content`` plus SHA256SUMS itself."""
        return {**self.content, CHECKSUMS: hashlib.sha256(self.checksums.encode()).hexdigest()}

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


def app_files(spec: AppSpec) -> dict[str, Path]:
    """An app's own files as the release's ``app/`` (what its start command runs), by path.

    Caches, VCS data and local venvs stay behind; a spec that starts an object path gets the
    launcher beside its files.
    """
    root = spec.directory
    files = {
        f"{APP_DIR}/{path.relative_to(root).as_posix()}": path
        for path in sorted(root.rglob("*"))
        if path.is_file()
        and not _LEFT_BEHIND & set(path.relative_to(root).parts)
        and path.suffix != ".pyc"
    }
    if spec.start_app is not None:
        files[f"{APP_DIR}/{LAUNCHER}"] = Path(launch.__file__)
    return files


_LEFT_BEHIND = {"__pycache__", ".git", ".venv", "venv", ".gradio", "flagged", ".pytest_cache"}


def bundled_requirements(runtime: str) -> tuple[str, ...]:
    """The bundled app's requirement lines for a model served on ``runtime``: its own (the
    ONNX runtime's) set, plus its ``torch`` extra only when the model runs on torch."""
    lines = []
    for line in md.distribution(APP_DISTRIBUTION).requires or ():
        requirement = Requirement(line)
        if requirement.marker is None or "extra" not in str(requirement.marker):
            lines.append(line)
        elif requirement.marker.evaluate({"extra": runtime}):
            requirement.marker = None
            lines.append(str(requirement))
    return tuple(lines)


def verified_model(model_dir: Path, cache: Path) -> list[str]:
    """``verify(model_dir)``: the problems that make the artifact differ from its manifest.

    Hashing every model file (163 MB with the torch weights and both ONNX exports) is a tenth of
    a no-op deploy, so an artifact that passed is remembered in ``<cache>/verified/`` by what
    ``stat`` says of each of its files (size, inode, mtime and ctime in ns) and not hashed again
    while that stays the same. Any write, copy, move or ``touch`` sets a file's ctime to now, and
    only a change of the system clock sets it back. What that trades away: damage that bypasses
    the file system (a failing disk) is not seen until the file's ctime changes.
    """
    root = model_dir.resolve()
    seen = []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        st = path.stat()
        rel = path.relative_to(root).as_posix()
        seen.append((rel, st.st_size, st.st_ino, st.st_mtime_ns, st.st_ctime_ns))
    key = hashlib.sha256(json.dumps([str(root), seen]).encode()).hexdigest()[:32]
    passed = cache / "verified" / key
    if passed.is_file():
        return []
    problems = verify(model_dir)
    if not problems:
        passed.parent.mkdir(parents=True, exist_ok=True)
        passed.touch()
    return problems


def build_release(app_dir: Path, model_dir: Path, cache: Path) -> ReleaseBundle:
    """Verify the model against its manifest, take the app (its wheel or its files), name it.

    The bundled app gets only the model files its runtime reads (an ONNX host: no torch
    weights) and a venv of that runtime's requirements; an app spec's app gets every file.
    Raises AppSpecError for a bad ``mlopsdeploy.toml`` before anything else is built.
    """
    spec = load_app_spec(app_dir)
    problems = verified_model(model_dir, cache)
    if problems:
        raise ValueError(f"model {model_dir} fails its manifest: {'; '.join(problems[:5])}")
    manifest = read_manifest(model_dir)
    files = {APP_WHEEL: build_app_wheel(app_dir, cache)} if spec.bundled else app_files(spec)
    runtime = serving_runtime(manifest)
    model_files = list(manifest["files"])
    if spec.bundled:
        model_files = runtime_files(manifest, runtime) or model_files
    # Every model file matched the manifest (verified_model): its digests are theirs.
    hashed = {f"model/{rel}": str(manifest["files"][rel]) for rel in model_files}
    for rel in [*model_files, MANIFEST_NAME]:
        files[f"model/{rel}"] = model_dir / rel
    hashed.update({rel: sha256_file(path) for rel, path in files.items() if rel not in hashed})
    sums = "".join(f"{rel}\0{hashed[rel]}\n" for rel in sorted(files))
    return ReleaseBundle(
        id="r-" + hashlib.sha256(sums.encode()).hexdigest()[:12],
        files=files,
        model_version=str(manifest["version"]),
        canaries=manifest_canaries(manifest),
        spec=None if spec.bundled else spec,
        requirements=bundled_requirements(runtime) if spec.bundled else None,
        hashed=hashed,
    )
