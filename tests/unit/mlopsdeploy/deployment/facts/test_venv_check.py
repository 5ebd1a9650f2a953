"""The venv fact's check script, run by a real (tiny) venv's interpreter as on the host."""

from __future__ import annotations

import base64
import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

import pytest

from mlopsdeploy.deployment.facts.runtime import (
    LOCK_NAME,
    STAMP_NAME,
    VenvReport,
    VenvState,
)

CODE = "def answer():\n    return 42\n"


def record_hash(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A venv holding one pinned distribution, ``tinypkg==1.0``, stamped like a deploy does."""
    root = tmp_path_factory.mktemp("venv")
    venv.create(root, with_pip=False)
    version = f"python{sys.version_info[0]}.{sys.version_info[1]}"
    site = root / "lib" / version / "site-packages"
    (site / "tinypkg").mkdir()
    (site / "tinypkg" / "__init__.py").write_text(CODE)
    info = site / "tinypkg-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: tinypkg\nVersion: 1.0\n")
    (info / "RECORD").write_text(
        f"tinypkg/__init__.py,{record_hash(CODE.encode())},{len(CODE)}\n"
        "tinypkg-1.0.dist-info/RECORD,,\n"
    )
    (root / LOCK_NAME).write_text("tinypkg==1.0\n")
    (root / STAMP_NAME).write_text("abc\n")
    return root


def report(root: Path) -> VenvReport:
    fact = VenvState()
    out = subprocess.run(
        ["sh", "-c", fact.command(venv=str(root))], capture_output=True, text=True, check=True
    )
    return fact.process(out.stdout.splitlines())


def rewrite(path: Path, text: str) -> None:
    """Write ``text`` with a modification time after the stamp's, as any later edit has."""
    path.write_text(text)
    stamp = (path.parents[4] / STAMP_NAME).stat().st_mtime_ns
    os.utime(path, ns=(stamp + 10**9, stamp + 10**9))


def test_intact_venv_reports_nothing_broken(built: Path) -> None:
    assert report(built) == VenvReport(stamp="abc")


def test_changed_file_of_same_size_is_found_by_its_hash(built: Path) -> None:
    module = next(built.glob("lib/*/site-packages/tinypkg/__init__.py"))
    rewrite(module, CODE.replace("42", "43"))
    try:
        assert report(built).broken == ["tinypkg"]
    finally:
        rewrite(module, CODE)
    assert report(built).broken == []  # touched but equal: hashed and found intact


def test_missing_or_resized_file_is_broken(built: Path) -> None:
    module = next(built.glob("lib/*/site-packages/tinypkg/__init__.py"))
    rewrite(module, CODE + "# more\n")
    try:
        assert report(built).broken == ["tinypkg"]
        module.unlink()
        assert report(built).broken == ["tinypkg"]
    finally:
        rewrite(module, CODE)


def test_pins_are_matched_by_normalised_name_and_header_version(built: Path) -> None:
    lock = built / LOCK_NAME
    try:
        lock.write_text("TinyPkg==1.0\n")  # the lock's spelling of the name is reported back
        assert report(built) == VenvReport(stamp="abc")
        lock.write_text("TinyPkg==2.0\nother-pkg==1.0\n")
        assert report(built).broken == ["TinyPkg", "other-pkg"]  # wrong version, missing
    finally:
        lock.write_text("tinypkg==1.0\n")
