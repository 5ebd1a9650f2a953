from __future__ import annotations

from pathlib import Path

from mlopsdeploy.deployment.control.wheelhouse import _fetch_command, pinned_requirements
from mlopsdeploy.deployment.facts.runtime import PythonTarget

HERE = PythonTarget(version="3.11", machine="x86_64", libc="2.36")


def test_lock_pins_the_apps_closure_as_installed_here() -> None:
    lock = pinned_requirements(HERE)
    pins = dict(line.split("==") for line in lock.text.split())
    assert pins["torch"] == "2.13.0+cpu"  # the CPU build, never a CUDA one
    assert {"fastapi", "gradio", "transformers", "uvicorn"} <= set(pins)
    assert "mlopsdeploy-app" not in pins and "pytest" not in pins
    assert lock.count == len(pins)


def test_lock_digest_depends_on_the_target_python() -> None:
    other = PythonTarget(version="3.12", machine="x86_64", libc="2.39")
    assert pinned_requirements(HERE).digest == pinned_requirements(HERE).digest
    assert pinned_requirements(HERE).digest != pinned_requirements(other).digest


def test_foreign_target_downloads_binary_wheels_for_its_platform(tmp_path: Path) -> None:
    other = PythonTarget(version="3.12", machine="aarch64", libc="2.39")
    command = _fetch_command(other, tmp_path / "lock.txt", tmp_path)
    assert "download" in command
    assert "--platform=manylinux_2_39_aarch64" in command
    assert "--python-version=3.12" in command and "--only-binary=:all:" in command
    assert "wheel" in _fetch_command(HERE, tmp_path / "lock.txt", tmp_path)
