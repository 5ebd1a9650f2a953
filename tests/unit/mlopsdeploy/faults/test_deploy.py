"""Faults on what the deploy owns, injected for real into a deploy root laid out here."""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path
from typing import Any

import pytest

from mlopsdeploy.deployment.host_commands import HOST_LOCK
from mlopsdeploy.faults import (
    AppPaths,
    ConcurrentDeploy,
    DamageAppCode,
    DeleteAppDir,
    DeleteChecksums,
    InterruptedDeploy,
)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """A deploy root with one release serving, as the deploy leaves it."""
    base = tmp_path / "mlopsdeploy"
    release = base / "releases" / "r-abcdef123456"
    (release / "app" / "app").mkdir(parents=True)
    (release / "app" / "app" / "routes.py").write_text("ROUTES = []\n")
    (release / "app" / "app" / "__init__.py").write_text("")
    (release / "model").mkdir()
    (release / "model" / "config.json").write_text("{}" * 100)
    (release / "SHA256SUMS").write_text("")
    (release / ".complete").touch()
    (base / "current").symlink_to("releases/r-abcdef123456")
    return base


@pytest.fixture
def target(root: Path, app_process: subprocess.Popen[bytes], local_guest: Any, make_target: Any):
    made = make_target(local_guest(app_process.pid))
    made.paths = AppPaths(str(root), str(root / "venv"), str(root / "current" / "model"))
    return made


def test_app_code_damage_breaks_a_module_and_restarts_the_app(root, target, app_process) -> None:
    DamageAppCode().inject(target)
    assert "damaged(" in (root / "current" / "app" / "app" / "routes.py").read_text()
    assert app_process.wait(timeout=5) == -signal.SIGKILL


def test_app_dir_deletion_keeps_the_rest_of_the_release(root, target, app_process) -> None:
    DeleteAppDir().inject(target)
    assert not (root / "current" / "app").exists()
    assert (root / "current" / "model" / "config.json").is_file()
    assert app_process.wait(timeout=5) == -signal.SIGKILL


def test_checksums_deletion_leaves_the_app_alone(root, target, app_process) -> None:
    DeleteChecksums().inject(target)
    assert not (root / "current" / "SHA256SUMS").exists()
    assert app_process.poll() is None
    assert DeleteChecksums().recovery.hidden


def test_interrupted_deploy_leaves_what_a_kill_mid_stage_would(root, target, app_process) -> None:
    InterruptedDeploy().inject(target)
    release = root / "current"
    assert not (release / ".complete").exists()
    assert (release / "model" / "config.json").stat().st_size == 100
    assert (release / ".app.new" / "app" / "__init__.py").is_file()
    assert (root / ".current.new").is_symlink()
    assert app_process.wait(timeout=5) == -signal.SIGKILL


def test_concurrent_deploy_holds_the_host_lock_then_lets_go(root, target) -> None:
    ConcurrentDeploy(seconds=2).inject(target)
    lock = str(root / HOST_LOCK)
    assert subprocess.run(["flock", "-w", "0", lock, "true"]).returncode != 0
    assert subprocess.run(["flock", "-w", "30", lock, "true"]).returncode == 0
