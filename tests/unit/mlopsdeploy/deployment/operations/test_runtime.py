from __future__ import annotations

from pathlib import Path

import pytest
from pyinfra.api import FileUploadCommand
from pyinfra.facts.deb import DebPackages

from mlopsdeploy.config import HostConfig
from mlopsdeploy.deployment.control.wheelhouse import Lock
from mlopsdeploy.deployment.facts.runtime import InstallerVersion, LockStamp, VenvReport, VenvState
from mlopsdeploy.deployment.operations.runtime import installer, os_packages, venv

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
    assert "--python /home/student-admin/mlopsdeploy/venv/bin/python" in install
    assert "--no-index --find-links /home/student-admin/mlopsdeploy/wheelhouse" in install
    assert text[-1].endswith(
        "echo abc123 > /home/student-admin/mlopsdeploy/venv/mlopsdeploy-lock.sha256"
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
