"""The release fact's command, run by a local shell and python3 on a release dir as on the host."""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

import pytest

from mlopsdeploy.deployment.facts.release import (
    COMPLETE_MARKER,
    ReleaseFiles,
    ReleaseIntegrity,
)


def read(path: Path) -> ReleaseFiles:
    """What the deploy sees of ``path``: the command's output as the fact parses it."""
    command = ReleaseIntegrity().command(path=str(path))
    done = subprocess.run(["sh", "-c", command], capture_output=True, text=True, check=True)
    return ReleaseIntegrity().process(done.stdout.splitlines())


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def release(tmp_path: Path) -> Path:
    """A sealed release: wheel, unpacked app with its bytecode cache, a model bigger than the
    command's read buffer, and the completion marker."""
    root = tmp_path / "r-0123456789ab"
    (root / "app" / "app" / "__pycache__").mkdir(parents=True)
    (root / "model").mkdir()
    (root / "app.whl").write_bytes(b"wheel")
    (root / "app" / "app" / "routes.py").write_text("ROUTES = []\n")
    (root / "app" / "app" / "__pycache__" / "routes.cpython-311.pyc").write_bytes(b"pyc")
    (root / "model" / "model.int8.onnx").write_bytes(bytes(range(256)) * 9000)  # 2.3 MB
    (root / "SHA256SUMS").write_text("sums\n")
    (root / COMPLETE_MARKER).touch()
    return root


def test_every_served_file_is_hashed_and_the_marker_read(release: Path) -> None:
    assert read(release) == ReleaseFiles(
        {
            "app.whl": sha(b"wheel"),
            "app/app/routes.py": sha(b"ROUTES = []\n"),
            "model/model.int8.onnx": sha(bytes(range(256)) * 9000),
            "SHA256SUMS": sha(b"sums\n"),
        },
        complete=True,
    )


def test_one_changed_byte_in_the_model_changes_its_digest(release: Path) -> None:
    model = release / "model" / "model.int8.onnx"
    data = bytearray(model.read_bytes())
    data[2_000_000] ^= 1  # past the first 1 MiB read
    model.write_bytes(data)
    assert read(release).digests["model/model.int8.onnx"] == sha(bytes(data))  # type: ignore[index]


def test_extra_files_and_odd_names_are_listed_as_sha256sum_names_them(release: Path) -> None:
    (release / "model" / "a\\b").write_bytes(b"x")
    (release / "model" / "n\nl").write_bytes(b"y")
    (release / "link").symlink_to("app.whl")  # a link is no file of the release
    digests = read(release).digests or {}
    assert digests["model/a\\\\b"] == sha(b"x")
    assert digests["model/n\\nl"] == sha(b"y")
    assert "link" not in digests


def test_a_missing_release_and_a_missing_marker(release: Path) -> None:
    assert read(release.parent / "r-ffffffffffff") == ReleaseFiles(None)
    (release / COMPLETE_MARKER).unlink()
    assert read(release).complete is False
