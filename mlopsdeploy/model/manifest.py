"""manifest.json: the record that makes a model directory a versioned, checkable artifact.

A deploy copies a model directory to a VM; a half-finished copy or a tampered file must be
detectable there without the build inputs. So every file's sha256 is written beside the
weights, together with what the model is (version, metrics, sources) so that `/readyz` and a
reviewer can tell which model answers.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

MANIFEST_NAME = "manifest.json"
FORMAT = 1
_CHUNK = 1 << 20


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, read in chunks so large weights don't sit in memory twice."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def artifact_files(model_dir: Path) -> list[str]:
    """Relative POSIX paths of every file in the artifact except the manifest itself."""
    return sorted(
        path.relative_to(model_dir).as_posix()
        for path in model_dir.rglob("*")
        if path.is_file() and path.relative_to(model_dir).as_posix() != MANIFEST_NAME
    )


def hash_files(model_dir: Path) -> dict[str, str]:
    """{relpath: sha256} for every artifact file."""
    return {rel: sha256_file(model_dir / rel) for rel in artifact_files(model_dir)}


def write_manifest(model_dir: Path, version: str, **fields: Any) -> dict[str, Any]:
    """Hash the directory's files and write manifest.json (mode 0644) with `fields` added."""
    manifest: dict[str, Any] = {"format": FORMAT, "version": version, **fields}
    manifest["files"] = hash_files(model_dir)
    path = model_dir / MANIFEST_NAME
    path.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    path.chmod(0o644)
    return manifest


def read_manifest(model_dir: Path) -> dict[str, Any]:
    """The parsed manifest; raises OSError / ValueError when absent or not a JSON object."""
    data = json.loads((model_dir / MANIFEST_NAME).read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise ValueError(f"{MANIFEST_NAME} is not a JSON object")
    return data


def runtime_files(manifest: dict[str, Any], runtime: str) -> list[str] | None:
    """The files `runtime` needs per the manifest's "runtimes"; None when it does not say."""
    runtimes = manifest.get("runtimes")
    files = runtimes.get(runtime) if isinstance(runtimes, dict) else None
    return [str(rel) for rel in files] if isinstance(files, list) else None


def serving_runtime(manifest: dict[str, Any]) -> str:
    """The runtime a host serving this model needs: "onnx" when the model carries an ONNX
    export (its manifest lists the onnx runtime's files), else "torch"."""
    return "onnx" if runtime_files(manifest, "onnx") else "torch"


def verify(model_dir: str | Path, runtime: str | None = None) -> list[str]:
    """Problems that make `model_dir` differ from its manifest; empty when the artifact is intact.

    Names every missing, modified and unexpected file, so a deploy can say exactly what a
    half-copied or tampered directory lacks. With `runtime`, only the files that runtime
    needs must be there (a host serving ONNX gets no torch weights), but every file that is
    there must still match.
    """
    root = Path(model_dir)
    if not root.is_dir():
        return [f"{root}: not a directory"]
    try:
        manifest = read_manifest(root)
    except FileNotFoundError:
        return [f"{MANIFEST_NAME}: missing"]
    except (OSError, ValueError) as error:
        return [f"{MANIFEST_NAME}: unreadable ({error})"]
    files = manifest.get("files")
    if not isinstance(files, dict) or not isinstance(manifest.get("version"), str):
        return [f"{MANIFEST_NAME}: no 'version' or no 'files' mapping"]
    problems = [
        f"runtimes.{name}: {rel} is not among the hashed files"
        for name in (manifest.get("runtimes") or {})
        for rel in runtime_files(manifest, name) or []
        if rel not in files
    ]
    needed = set(files)
    if runtime is not None:
        wanted = runtime_files(manifest, runtime)
        if wanted is None:
            return [*problems, f"{MANIFEST_NAME}: no files listed for runtime {runtime!r}"]
        needed = set(wanted)
    for rel, expected in sorted(files.items()):
        path = root / rel
        if Path(rel).is_absolute() or ".." in Path(rel).parts:
            problems.append(f"{rel}: path escapes the model directory")
        elif not path.is_file():
            if rel in needed:
                problems.append(f"{rel}: missing")
        elif sha256_file(path) != expected:
            problems.append(f"{rel}: modified (sha256 differs from manifest)")
    problems.extend(f"{rel}: unexpected file" for rel in artifact_files(root) if rel not in files)
    return problems
