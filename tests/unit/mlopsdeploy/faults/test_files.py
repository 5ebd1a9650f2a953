from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from mlopsdeploy.faults import AppPaths, CorruptVenv, DamageModel, FillDisk


def _with_fake_sudo(guest: Any, tmp_path: Path) -> Any:
    """`sudo -n CMD...` runs CMD as this (already privileged) test process."""
    fake = tmp_path / "bin" / "sudo"
    fake.write_text('#!/bin/sh\nshift\nexec "$@"\n')
    fake.chmod(0o755)
    return guest


def test_venv_corruption_deletes_the_code_keeps_the_metadata_and_restarts_the_app(
    tmp_path: Path,
    app_process: subprocess.Popen[bytes],
    local_guest: Any,
    make_target: Any,
) -> None:
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "python").symlink_to(sys.executable)
    site = tmp_path / "site"
    (site / "fakepkg").mkdir(parents=True)
    (site / "fakepkg" / "__init__.py").write_text("")
    (site / "fakepkg-1.0.dist-info").mkdir()
    guest = local_guest(app_process.pid)
    guest.env["PYTHONPATH"] = str(site)
    paths = AppPaths(root=str(tmp_path), venv=str(venv), model_dir=str(tmp_path / "model"))
    target = make_target(guest)
    target.paths = paths

    CorruptVenv(package="fakepkg").inject(target)

    assert not (site / "fakepkg").exists()
    assert (site / "fakepkg-1.0.dist-info").is_dir()
    assert app_process.wait(timeout=5) == -signal.SIGKILL


@pytest.mark.parametrize("delete", [False, True])
def test_model_damage_zeroes_the_weights_header_or_deletes_the_file_then_restarts_the_app(
    delete: bool,
    tmp_path: Path,
    app_process: subprocess.Popen[bytes],
    local_guest: Any,
    make_target: Any,
) -> None:
    model = tmp_path / "model"
    model.mkdir()
    weights = model / "model.safetensors"
    weights.write_bytes(os.urandom(8192))
    target = make_target(_with_fake_sudo(local_guest(app_process.pid), tmp_path))
    target.paths = AppPaths(root=str(tmp_path), venv="/nonexistent", model_dir=str(model))

    DamageModel(delete=delete).inject(target)

    if delete:
        assert not weights.exists()
    else:
        data = weights.read_bytes()
        assert data[:4096] == bytes(4096) and len(data) == 8192
    assert app_process.wait(timeout=5) == -signal.SIGKILL


def test_disk_fill_stacks_a_tiny_tmpfs_over_the_deploy_root_and_undo_unmounts_it(
    guest: Any, make_target: Any
) -> None:
    target = make_target(guest)
    FillDisk().inject(target)
    (mounts,) = guest.commands
    assert "mount -t tmpfs -o size=1m" in mounts
    assert "mount -t overlay" in mounts and "lowerdir=/home/u/mlopsdeploy," in mounts
    assert mounts.endswith(" /home/u/mlopsdeploy")

    FillDisk().undo(target)
    assert [c.split("||")[0].strip() for c in guest.commands[1:]] == [
        "! mountpoint -q /home/u/mlopsdeploy",
        "! mountpoint -q /run/mlopsdeploy-fault-disk",
    ]


def test_model_damage_hits_the_file_the_app_serves_from(
    tmp_path: Path,
    app_process: subprocess.Popen[bytes],
    local_guest: Any,
    make_target: Any,
) -> None:
    model = tmp_path / "model"
    model.mkdir()
    torch_weights, onnx_weights = model / "model.safetensors", model / "model.int8.onnx"
    for path in (torch_weights, onnx_weights):
        path.write_bytes(b"\x01" * 8192)
    target = make_target(_with_fake_sudo(local_guest(app_process.pid), tmp_path))
    target.paths = AppPaths(root=str(tmp_path), venv="/nonexistent", model_dir=str(model))

    DamageModel().inject(target)

    assert onnx_weights.read_bytes()[:4096] == bytes(4096)
    assert torch_weights.read_bytes() == b"\x01" * 8192
