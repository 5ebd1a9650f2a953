from __future__ import annotations

from pathlib import Path

import pytest
from pyinfra.api import FileUploadCommand
from pyinfra.facts.deb import DebPackages

from mlopsdeploy.config import HostConfig
from mlopsdeploy.deployment.control.wheelhouse import Lock
from mlopsdeploy.deployment.facts.runtime import (
    InstallerVersion,
    LockStamp,
    VenvIndex,
    VenvReport,
    Venvs,
    VenvState,
)
from mlopsdeploy.deployment.operations.runtime import (
    installer,
    os_packages,
    venv,
    venv_moved_aside,
    venv_recorded,
    venv_serving,
    venvs_pruned,
)

LOCK = Lock(text="fastapi==0.165.0\ntorch==2.13.0+cpu\n", digest="abc123")
UV = Path("/cache/uv-0.13.8-py3-none-manylinux_2_17_x86_64.whl")
UV_BIN = "/home/student-admin/mlopsdeploy/installer/uv-0.13.8.data/scripts/uv"


@pytest.fixture
def cfg() -> HostConfig:
    return HostConfig(name="vm", address="10.0.0.2", own_key=Path("/k"))


@pytest.fixture
def wheelhouse(tmp_path: Path) -> Path:
    for name in ("fastapi-0.165.0-py3-none-any.whl", "torch-2.13.0+cpu-cp311.whl"):
        (tmp_path / name).write_bytes(b"wheel")
    return tmp_path


def uploads(commands: list) -> list[str]:
    return [c.dest for c in commands if isinstance(c, FileUploadCommand)]


def test_intact_venv_is_no_change(run_op, cfg, wheelhouse) -> None:
    facts = {VenvState: VenvReport(stamp="abc123")}
    assert run_op(venv, facts, cfg=cfg, lock=LOCK, installer_wheel=UV, wheelhouse=wheelhouse) == []


def test_cold_host_gets_wheelhouse_then_venv(run_op, cfg, wheelhouse) -> None:
    facts = {VenvState: VenvReport(stamp=None), LockStamp: None}
    commands = run_op(venv, facts, cfg=cfg, lock=LOCK, installer_wheel=UV, wheelhouse=wheelhouse)
    pushed = uploads(commands)
    assert "/home/student-admin/mlopsdeploy/wheelhouse.partial/torch-2.13.0+cpu-cp311.whl" in pushed
    # the stamp goes last, so a half-pushed wheelhouse is never taken for complete
    assert pushed[-1].endswith("wheelhouse.partial/mlopsdeploy-lock.sha256")
    text = [c for c in commands if isinstance(c, str)]
    assert any("python3 -m venv --without-pip --clear" in c for c in text)
    install = next(c for c in text if " pip install " in c)
    assert install.startswith(f"{UV_BIN} pip install")
    # A new lock's venv is built beside the serving one, never over it.
    assert "--python /home/student-admin/mlopsdeploy/venvs/abc123/bin/python" in install
    assert "--no-index --find-links /home/student-admin/mlopsdeploy/wheelhouse" in install
    assert text[-1].endswith(
        "echo abc123 > /home/student-admin/mlopsdeploy/venvs/abc123/mlopsdeploy-lock.sha256"
    )


def test_wheelhouse_already_on_host_is_not_pushed_again(run_op, cfg, wheelhouse) -> None:
    facts = {VenvState: VenvReport(stamp=None), LockStamp: "abc123"}
    commands = run_op(venv, facts, cfg=cfg, lock=LOCK, installer_wheel=UV, wheelhouse=wheelhouse)
    assert uploads(commands) == []
    assert any(" pip install " in c for c in commands if isinstance(c, str))


def test_broken_package_is_reinstalled_alone(run_op, cfg, wheelhouse) -> None:
    facts = {VenvState: VenvReport(stamp="abc123", broken=["fastapi"]), LockStamp: "abc123"}
    (command,) = run_op(venv, facts, cfg=cfg, lock=LOCK, installer_wheel=UV, wheelhouse=wheelhouse)
    assert "--no-deps --reinstall fastapi==0.165.0" in command
    assert "torch" not in command


def test_online_mode_installs_the_same_lock_from_the_index(run_op, wheelhouse) -> None:
    cfg = HostConfig(
        name="vm",
        address="a",
        own_key=Path("/k"),
        install="online",
        index_url="https://download.pytorch.org/whl/cpu",
    )
    commands = run_op(
        venv, {VenvState: VenvReport(stamp=None)}, cfg=cfg, lock=LOCK, installer_wheel=UV
    )
    assert uploads(commands) == ["/home/student-admin/mlopsdeploy/mlopsdeploy-lock.txt"]
    install = next(c for c in commands if isinstance(c, str) and " pip install " in c)
    assert "--index-url https://download.pytorch.org/whl/cpu" in install
    assert "--no-index" not in install


def test_os_packages_only_installs_what_is_missing(run_op) -> None:
    assert run_op(os_packages, {DebPackages: {"python3": ["3.11"], "python3-venv": ["3.11"]}}) == []
    commands = run_op(os_packages, {DebPackages: {"python3": ["3.11"]}})
    assert commands[-1].endswith("apt-get install -y -q python3-venv")


def test_installer_is_unpacked_only_when_its_version_is_missing(run_op, cfg) -> None:
    assert run_op(installer, {InstallerVersion: "uv 0.13.8"}, cfg=cfg, wheel=UV) == []
    commands = run_op(installer, {InstallerVersion: "uv 0.12.0"}, cfg=cfg, wheel=UV)
    assert uploads(commands) == [f"/home/student-admin/mlopsdeploy/installer/{UV.name}"]
    assert commands[-1].endswith(f"chmod +x {UV_BIN}")


BASE = "/home/student-admin/mlopsdeploy"
OLD, NEW = "0" * 16, "1" * 16


def test_serving_link_moves_only_to_another_venv(run_op, cfg) -> None:
    serving = {Venvs: VenvIndex(serving=OLD, present=[OLD, NEW])}
    (command,) = run_op(venv_serving, serving, cfg=cfg, digest=NEW)
    # One rename: a worker starting meanwhile finds the old venv or the new one, never none.
    assert command == (
        f"ln -sfn venvs/{NEW} {BASE}/.venv.new && mv -T {BASE}/.venv.new {BASE}/venv"
    )
    assert run_op(venv_serving, serving, cfg=cfg, digest=OLD) == []


def test_plain_venv_dir_of_the_earlier_layout_is_moved_behind_the_link(run_op, cfg) -> None:
    (command,) = run_op(venv_moved_aside, {Venvs: VenvIndex(legacy=OLD)}, cfg=cfg)
    assert f"mv -T {BASE}/venv {BASE}/venvs/{OLD}" in command
    assert command.endswith(f"ln -sfn venvs/{OLD} {BASE}/venv")
    unfinished = run_op(venv_moved_aside, {Venvs: VenvIndex(legacy="")}, cfg=cfg)
    assert unfinished == [f"rm -rf {BASE}/venv"]
    assert run_op(venv_moved_aside, {Venvs: VenvIndex(serving=OLD)}, cfg=cfg) == []


def test_release_records_the_venv_it_serves_with(run_op, cfg) -> None:
    (command,) = run_op(
        venv_recorded, {Venvs: VenvIndex(serving=NEW)}, cfg=cfg, release_id="r-abc123", digest=NEW
    )
    link = f"{BASE}/releases/r-abc123/.venv"
    assert command.startswith(f"ln -sfn ../../venvs/{NEW} ") and command.endswith(f" {link}")
    recorded = {Venvs: VenvIndex(serving=NEW, recorded={"r-abc123": NEW})}
    assert run_op(venv_recorded, recorded, cfg=cfg, release_id="r-abc123", digest=NEW) == []


def test_prune_keeps_the_serving_venv_and_those_of_kept_releases(run_op, cfg) -> None:
    other, refused = "2" * 16, "3" * 16
    index = VenvIndex(
        serving=NEW, recorded={"r-aaaaaa": OLD, "r-bbbbbb": NEW}, present=[OLD, NEW, other, refused]
    )
    (command,) = run_op(venvs_pruned, {Venvs: index}, cfg=cfg)
    assert command == f"rm -rf {BASE}/venvs/{other} {BASE}/venvs/{refused}"
    kept = VenvIndex(serving=NEW, recorded={"r-aaaaaa": OLD}, present=[OLD, NEW])
    assert run_op(venvs_pruned, {Venvs: kept}, cfg=cfg) == []
