"""Atomic publication and the cache location: a failed write never leaves a half directory."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlopsdeploy.model.manifest import write_manifest
from mlopsdeploy.model.store import atomic_dir, cached, copy_artifact, default_cache_dir


def test_atomic_dir_replaces_an_existing_directory(tmp_path: Path) -> None:
    dest = tmp_path / "out"
    dest.mkdir()
    (dest / "old.txt").write_text("old")
    with atomic_dir(dest) as tmp:
        (tmp / "new.txt").write_text("new")
        assert not (dest / "new.txt").exists()
    assert [p.name for p in dest.iterdir()] == ["new.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    assert dest.stat().st_mode & 0o777 == 0o755
    assert (dest / "new.txt").stat().st_mode & 0o777 == 0o644


def test_failure_keeps_the_old_directory_and_leaves_no_temp(tmp_path: Path) -> None:
    dest = tmp_path / "out"
    dest.mkdir()
    (dest / "old.txt").write_text("old")
    with pytest.raises(RuntimeError), atomic_dir(dest) as tmp:
        (tmp / "half.bin").write_text("half")
        raise RuntimeError("training crashed")
    assert [p.name for p in dest.iterdir()] == ["old.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_copy_artifact_is_independent_of_its_source(tmp_path: Path) -> None:
    src = tmp_path / "cache" / "v1"
    src.mkdir(parents=True)
    (src / "weights.bin").write_bytes(b"weights")
    write_manifest(src, "v1")
    copy_artifact(src, tmp_path / "out")
    (tmp_path / "out" / "weights.bin").write_bytes(b"tampered")
    assert (src / "weights.bin").read_bytes() == b"weights"


def test_cached_rejects_a_corrupt_or_mislabelled_entry(tmp_path: Path) -> None:
    entry = tmp_path / "v1"
    entry.mkdir()
    (entry / "weights.bin").write_bytes(b"weights")
    write_manifest(entry, "v1")
    assert cached(tmp_path, "v1") == entry
    assert cached(tmp_path, "v2") is None
    (entry / "weights.bin").write_bytes(b"weightz")
    assert cached(tmp_path, "v1") is None


def test_cache_dir_is_configurable(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("MLOPSDEPLOY_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_dir() == tmp_path / "xdg" / "mlopsdeploy" / "models"
    monkeypatch.setenv("MLOPSDEPLOY_CACHE", str(tmp_path / "mine"))
    assert default_cache_dir() == tmp_path / "mine"
