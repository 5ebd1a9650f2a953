"""`fetch`: a Hub model id into the same artifact layout as `build`, with a manifest.

Production VMs that can reach the Hub may serve a published model instead of the built one;
deploys then handle both the same way (copy, `verify`, read the version for /readyz). Like a
build, the fetched model is exported to ONNX here, on the control machine (with the same
agreement gate), so the hosts serve it without torch and need no Hub access. The download and
export functions are parameters so tests can stand a local directory in for the Hub.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any

from mlopsdeploy.model.export import runtime_files
from mlopsdeploy.model.manifest import write_manifest
from mlopsdeploy.model.store import atomic_dir

#: Enough to run a transformers model; skips duplicate weights for other frameworks.
ALLOW_PATTERNS = ["*.json", "*.safetensors", "*.txt", "*.model"]

Download = Callable[..., str]
#: Adds ONNX files to a model dir; returns the manifest's "onnx" section (see build.py).
Export = Callable[[Path], dict[str, Any]]


def _snapshot_download(**kwargs: Any) -> str:
    from huggingface_hub import snapshot_download

    return str(snapshot_download(**kwargs))


def add_tokenizer_json(model_dir: Path) -> None:
    """Write the fast tokenizer's `tokenizer.json` if the repo lacks it (older Hub repos ship
    only `vocab.txt`): the ONNX runtime tokenizes with the `tokenizers` library alone."""
    if (model_dir / "tokenizer.json").is_file():
        return
    from transformers import AutoTokenizer

    AutoTokenizer.from_pretrained(model_dir).save_pretrained(model_dir)


def fetch(
    model_id: str,
    out: Path,
    revision: str | None = None,
    download: Download = _snapshot_download,
    export: Export | None = None,
) -> dict[str, Any]:
    """Download `model_id` (token from HF_TOKEN, never argv) and publish it atomically at `out`.

    The version is `<model_id>@<commit>`, the commit being the snapshot the Hub resolved.
    With `export`, the ONNX files it adds and each runtime's files are in the manifest.
    """
    snapshot = Path(download(repo_id=model_id, revision=revision, allow_patterns=ALLOW_PATTERNS))
    with atomic_dir(out) as tmp:
        # Hub cache snapshots are symlinks into a blob store: copy the contents, not the links.
        shutil.copytree(snapshot, tmp, dirs_exist_ok=True, ignore=shutil.ignore_patterns(".*"))
        exported: dict[str, Any] = {}
        if export is not None:
            onnx = export(tmp)
            exported = {"onnx": onnx, "runtimes": runtime_files(tmp, onnx["serves"])}
        return write_manifest(
            tmp,
            f"{model_id}@{snapshot.name}",
            kind="fetched",
            sources={
                "model_id": model_id,
                "revision": snapshot.name,
                "packages": {"huggingface_hub": metadata.version("huggingface_hub")},
            },
            **exported,
        )
