"""manifest.json and verify(): a tampered, truncated or padded model directory is named."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mlopsdeploy.model import MANIFEST_NAME, verify
from mlopsdeploy.model.manifest import read_manifest, serving_runtime, write_manifest


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    root = tmp_path / "model"
    (root / "sub").mkdir(parents=True)
    (root / "model.safetensors").write_bytes(bytes(range(256)) * 64)
    (root / "config.json").write_text('{"dtype": "float32"}\n')
    (root / "sub" / "vocab.txt").write_text("[PAD]\nhello\n")
    write_manifest(root, "test-1", metrics={"held_out_tweets": {"accuracy": 0.9}})
    return root


def test_manifest_lists_every_file_with_its_sha256(model_dir: Path) -> None:
    manifest = read_manifest(model_dir)
    assert manifest["version"] == "test-1"
    assert manifest["metrics"] == {"held_out_tweets": {"accuracy": 0.9}}
    assert sorted(manifest["files"]) == ["config.json", "model.safetensors", "sub/vocab.txt"]
    assert all(len(digest) == 64 for digest in manifest["files"].values())
    assert (model_dir / MANIFEST_NAME).stat().st_mode & 0o777 == 0o644


def test_intact_directory_has_no_problems(model_dir: Path) -> None:
    assert verify(model_dir) == []


def test_flipped_byte_is_detected(model_dir: Path) -> None:
    weights = model_dir / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[1000] ^= 0x01
    weights.write_bytes(bytes(data))
    assert verify(model_dir) == ["model.safetensors: modified (sha256 differs from manifest)"]


def test_missing_and_extra_files_are_named(model_dir: Path) -> None:
    (model_dir / "sub" / "vocab.txt").unlink()
    (model_dir / "stray.bin").write_bytes(b"x")
    assert verify(model_dir) == ["sub/vocab.txt: missing", "stray.bin: unexpected file"]


def test_missing_manifest_is_a_problem(model_dir: Path) -> None:
    (model_dir / MANIFEST_NAME).unlink()
    assert verify(model_dir) == ["manifest.json: missing"]


def test_manifest_paths_cannot_escape_the_directory(model_dir: Path) -> None:
    manifest = read_manifest(model_dir)
    manifest["files"]["../outside"] = "0" * 64
    (model_dir / MANIFEST_NAME).write_text(json.dumps(manifest))
    assert verify(model_dir) == ["../outside: path escapes the model directory"]


def test_directory_that_does_not_exist(tmp_path: Path) -> None:
    assert verify(tmp_path / "nope") == [f"{tmp_path / 'nope'}: not a directory"]


@pytest.fixture
def two_runtime_dir(tmp_path: Path) -> Path:
    """A model dir whose manifest says which files the torch and the onnx runtime need."""
    root = tmp_path / "model"
    root.mkdir()
    for name in ("config.json", "model.safetensors", "model.int8.onnx"):
        (root / name).write_bytes(name.encode())
    write_manifest(
        root,
        "test-2",
        runtimes={
            "torch": ["config.json", "model.safetensors"],
            "onnx": ["config.json", "model.int8.onnx"],
        },
    )
    return root


def test_a_runtime_needs_only_its_own_files(two_runtime_dir: Path) -> None:
    (two_runtime_dir / "model.safetensors").unlink()
    assert verify(two_runtime_dir, runtime="onnx") == []
    assert verify(two_runtime_dir, runtime="torch") == ["model.safetensors: missing"]
    assert verify(two_runtime_dir) == ["model.safetensors: missing"]


def test_tampered_onnx_file_is_detected_for_its_runtime(two_runtime_dir: Path) -> None:
    (two_runtime_dir / "model.int8.onnx").write_bytes(b"another graph")
    expected = ["model.int8.onnx: modified (sha256 differs from manifest)"]
    assert verify(two_runtime_dir, runtime="onnx") == expected
    assert verify(two_runtime_dir) == expected


def test_a_runtime_file_the_manifest_does_not_hash_is_a_problem(two_runtime_dir: Path) -> None:
    manifest = read_manifest(two_runtime_dir)
    manifest["runtimes"]["onnx"].append("model.onnx")
    (two_runtime_dir / MANIFEST_NAME).write_text(json.dumps(manifest))
    assert verify(two_runtime_dir) == ["runtimes.onnx: model.onnx is not among the hashed files"]
    assert verify(two_runtime_dir, runtime="gpu") == [
        "runtimes.onnx: model.onnx is not among the hashed files",
        "manifest.json: no files listed for runtime 'gpu'",
    ]


def test_a_model_with_onnx_files_is_served_on_onnx(two_runtime_dir: Path) -> None:
    assert serving_runtime(read_manifest(two_runtime_dir)) == "onnx"
    assert serving_runtime({"version": "fetched", "files": {"model.safetensors": "…"}}) == "torch"
