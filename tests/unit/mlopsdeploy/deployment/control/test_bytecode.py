from __future__ import annotations

import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

from mlopsdeploy.deployment.control.bytecode import archive_path, build_bytecode, compiles_for

TAG = sys.implementation.cache_tag
# PEP 552: a .pyc's second 4-byte word holds its flags; 0b11 is "hash-based, checked".
CHECKED_HASH = 0b11


@pytest.fixture
def wheelhouse(tmp_path: Path) -> Path:
    """A wheel with a package, its tests, a .data/ purelib module, a script, a Python 2 file."""
    house = tmp_path / "wheelhouse"
    house.mkdir()
    with zipfile.ZipFile(house / "pkg-1.0-py3-none-any.whl", "w") as wheel:
        wheel.writestr("pkg/__init__.py", "")
        wheel.writestr("pkg/mod.py", "VALUE = 1\n")
        wheel.writestr("pkg/tests/test_mod.py", "def test(): pass\n")
        wheel.writestr("pkg/legacy.py", "print 'python 2'\n")
        wheel.writestr("pkg-1.0.data/purelib/extra.py", "EXTRA = 1\n")
        wheel.writestr("pkg-1.0.data/scripts/tool.py", "print('tool')\n")
        wheel.writestr("pkg-1.0.dist-info/RECORD", "")
    return house


def installed(wheelhouse: Path, site: Path) -> Path:
    """The wheel's files where an installer puts them, and the archive unpacked over them."""
    with zipfile.ZipFile(wheelhouse / "pkg-1.0-py3-none-any.whl") as wheel:
        wheel.extractall(site)
    (site / "extra.py").write_text("EXTRA = 1\n")
    with tarfile.open(build_bytecode(wheelhouse)) as archive:
        archive.extractall(site, filter="data")
    return site


def run(site: Path, code: str) -> subprocess.CompletedProcess[str]:
    """Python with only ``site`` to import from, writing no bytecode of its own (-B)."""
    env = {"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin"}
    return subprocess.run(
        [sys.executable, "-B", "-v", "-c", code], env=env, capture_output=True, text=True
    )


def test_the_archive_holds_checked_hash_bytecode_of_what_lands_in_site_packages(
    wheelhouse: Path,
) -> None:
    with tarfile.open(build_bytecode(wheelhouse)) as archive:
        names = sorted(archive.getnames())
        flags = {
            name: int.from_bytes(archive.extractfile(name).read()[4:8], "little")  # type: ignore[union-attr]
            for name in names
        }
    assert names == [
        f"__pycache__/extra.{TAG}.pyc",
        f"pkg/__pycache__/__init__.{TAG}.pyc",
        f"pkg/__pycache__/mod.{TAG}.pyc",
    ]
    assert set(flags.values()) == {CHECKED_HASH}


def test_the_importer_runs_the_shipped_bytecode(wheelhouse: Path, tmp_path: Path) -> None:
    site = installed(wheelhouse, tmp_path / "site")
    result = run(site, "import pkg.mod")
    assert result.returncode == 0, result.stderr
    assert f"code object from '{site}/pkg/__pycache__/mod.{TAG}.pyc'" in result.stderr


def test_a_source_changed_after_the_install_is_run_from_its_source(
    wheelhouse: Path, tmp_path: Path
) -> None:
    site = installed(wheelhouse, tmp_path / "site")
    (site / "pkg" / "mod.py").write_text("VALUE = 2\n")
    result = run(site, "import pkg.mod; print(pkg.mod.VALUE)")
    assert result.stdout.strip() == "2"
    assert f"code object from '{site}/pkg/__pycache__/mod.{TAG}.pyc'" not in result.stderr


def test_the_archive_is_built_once(wheelhouse: Path) -> None:
    first = build_bytecode(wheelhouse)
    built = first.stat().st_mtime_ns
    assert build_bytecode(wheelhouse) == first == archive_path(wheelhouse)
    assert first.stat().st_mtime_ns == built
    assert [p.name for p in first.parent.iterdir()] == [first.name]  # no build dir left


def test_bytecode_is_only_compiled_for_this_python() -> None:
    here = f"{sys.version_info.major}.{sys.version_info.minor}"
    assert compiles_for(here)
    assert not compiles_for(f"{sys.version_info.major}.{sys.version_info.minor + 1}")
