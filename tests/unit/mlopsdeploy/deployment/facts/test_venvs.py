"""The venv and seal facts, run for real against a deploy root laid out in a temp dir."""

from __future__ import annotations

import subprocess
from pathlib import Path

from pyinfra.api import FactBase

from mlopsdeploy.deployment.facts.release import ReleaseSeal, Seal
from mlopsdeploy.deployment.facts.runtime import STAMP_NAME, VenvIndex, Venvs

OLD, NEW = "0" * 16, "1" * 16


def gather(fact: FactBase, **kwargs: str):
    out = subprocess.run(fact.command(**kwargs), shell=True, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    return fact.process(out.stdout.splitlines())


def test_venvs_in_use_and_present(tmp_path: Path) -> None:
    for name in (OLD, NEW, "not-a-lock"):
        (tmp_path / "venvs" / name).mkdir(parents=True)
    (tmp_path / "venv").symlink_to(f"venvs/{NEW}")
    release = tmp_path / "releases" / "r-aaaaaa"
    release.mkdir(parents=True)
    (release / ".venv").symlink_to(f"../../venvs/{OLD}")
    (tmp_path / "releases" / "r-bbbbbb").mkdir()  # never served: records nothing
    assert gather(Venvs(), base=str(tmp_path)) == VenvIndex(
        serving=NEW, recorded={"r-aaaaaa": OLD}, present=[OLD, NEW]
    )


def test_plain_venv_dir_is_the_earlier_layout(tmp_path: Path) -> None:
    (tmp_path / "venv").mkdir()
    assert gather(Venvs(), base=str(tmp_path)) == VenvIndex(legacy="")
    (tmp_path / "venv" / STAMP_NAME).write_text(OLD + "\n")
    assert gather(Venvs(), base=str(tmp_path)) == VenvIndex(legacy=OLD)


def test_empty_or_missing_root_has_no_venvs(tmp_path: Path) -> None:
    assert gather(Venvs(), base=str(tmp_path / "absent")) == VenvIndex()
    (tmp_path / "venv").symlink_to("/etc")  # a link the deploy never made: not a venv of ours
    assert gather(Venvs(), base=str(tmp_path)) == VenvIndex()


def test_release_seal(tmp_path: Path) -> None:
    assert gather(ReleaseSeal(), path=str(tmp_path / "absent")) == Seal()
    (tmp_path / "SHA256SUMS").write_text("x\n")
    digest = "73cb3858a687a8494ca3323053016282f3dad39d42cf62ca4e79dda2aac7d9ac"
    assert gather(ReleaseSeal(), path=str(tmp_path)) == Seal(checksums=digest)
    (tmp_path / ".complete").touch()
    assert gather(ReleaseSeal(), path=str(tmp_path)) == Seal(checksums=digest, complete=True)
