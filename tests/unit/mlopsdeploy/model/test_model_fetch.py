"""fetch(): a Hub snapshot becomes the same artifact layout as a build, with a manifest.

The Hub is unreachable here, so a directory laid out like huggingface_hub's cache (snapshot
files are symlinks into a blob store) stands in for snapshot_download's result.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from mlopsdeploy.model import read_manifest, verify
from mlopsdeploy.model.fetch import ALLOW_PATTERNS, fetch

COMMIT = "714eb0fa89d2f80546fda750413ed43d93601a13"
MODEL_ID = "distilbert/distilbert-base-uncased-finetuned-sst-2-english"


@pytest.fixture
def hub_cache(tmp_path: Path) -> Path:
    repo = tmp_path / "hub" / "models--distilbert--distilbert-base-uncased-finetuned-sst-2-english"
    blobs, snapshot = repo / "blobs", repo / "snapshots" / COMMIT
    blobs.mkdir(parents=True)
    snapshot.mkdir(parents=True)
    files = {
        "config.json": b'{"id2label": {"0": "NEGATIVE", "1": "POSITIVE"}}',
        "vocab.txt": b"a\n",
    }
    files["model.safetensors"] = b"\x00" * 4096
    for name, content in files.items():
        blob = blobs / f"blob-{name}"
        blob.write_bytes(content)
        (snapshot / name).symlink_to(blob)
    return snapshot


def test_fetch_writes_a_verified_artifact(tmp_path: Path, hub_cache: Path) -> None:
    calls: list[dict[str, Any]] = []

    def download(**kwargs: Any) -> str:
        calls.append(kwargs)
        return str(hub_cache)

    manifest = fetch(MODEL_ID, tmp_path / "out", download=download)
    out = tmp_path / "out"
    assert calls == [{"repo_id": MODEL_ID, "revision": None, "allow_patterns": ALLOW_PATTERNS}]
    assert manifest["version"] == f"{MODEL_ID}@{COMMIT}"
    assert read_manifest(out)["sources"]["revision"] == COMMIT
    assert sorted(read_manifest(out)["files"]) == ["config.json", "model.safetensors", "vocab.txt"]
    assert not any(path.is_symlink() for path in out.iterdir())
    assert verify(out) == []


def test_failed_download_leaves_nothing(tmp_path: Path) -> None:
    def download(**kwargs: Any) -> str:
        raise OSError("Hub unreachable")

    with pytest.raises(OSError, match="unreachable"):
        fetch(MODEL_ID, tmp_path / "out", download=download)
    assert list(tmp_path.iterdir()) == []


def test_fetch_with_export_records_the_onnx_files_and_each_runtimes_files(
    tmp_path: Path, hub_cache: Path
) -> None:
    def export(dest: Path) -> dict[str, Any]:
        for name in ("tokenizer.json", "tokenizer_config.json", "model.onnx"):
            (dest / name).write_bytes(name.encode())
        return {"opset": 17, "serves": "model.onnx", "variants": {}}

    manifest = fetch(MODEL_ID, tmp_path / "out", download=lambda **_: str(hub_cache), export=export)
    assert manifest["onnx"]["serves"] == "model.onnx"
    assert manifest["runtimes"]["onnx"] == [
        "config.json",
        "model.onnx",
        "tokenizer.json",
        "tokenizer_config.json",
    ]
    assert "model.safetensors" in manifest["runtimes"]["torch"]
    assert verify(tmp_path / "out", runtime="onnx") == []
