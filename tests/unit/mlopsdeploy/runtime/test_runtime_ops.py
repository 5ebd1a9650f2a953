from __future__ import annotations

from pathlib import Path

import pytest
from pyinfra.api import FileUploadCommand
from pyinfra.facts.deb import DebPackages

from mlopsdeploy.config import HostConfig
from mlopsdeploy.facts.runtime import VenvReport, VenvState, WheelhouseStamp
from mlopsdeploy.runtime import os_packages, venv
from mlopsdeploy.wheelhouse import Lock

LOCK = Lock(text="fastapi==0.165.0\ntorch==2.13.0+cpu\n", digest="abc123")


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
    assert run_op(venv, facts, cfg=cfg, lock=LOCK, wheelhouse=wheelhouse) == []


def test_cold_host_gets_wheelhouse_then_venv(run_op, cfg, wheelhouse) -> None:
    facts = {VenvState: VenvReport(stamp=None), WheelhouseStamp: None}
    commands = run_op(venv, facts, cfg=cfg, lock=LOCK, wheelhouse=wheelhouse)
    pushed = uploads(commands)
    assert "/home/student-admin/mlopsdeploy/wheelhouse.partial/torch-2.13.0+cpu-cp311.whl" in pushed
    # the stamp goes last, so a half-pushed wheelhouse is never taken for complete
    assert pushed[-1].endswith("wheelhouse.partial/mlopsdeploy-lock.sha256")
    text = [c for c in commands if isinstance(c, str)]
    assert any("python3 -m venv --clear" in c for c in text)
    install = next(c for c in text if "bin/pip install" in c)
    assert "--no-index --find-links /home/student-admin/mlopsdeploy/wheelhouse" in install
    assert text[-1].endswith(
        "echo abc123 > /home/student-admin/mlopsdeploy/venv/mlopsdeploy-lock.sha256"
    )


def test_wheelhouse_already_on_host_is_not_pushed_again(run_op, cfg, wheelhouse) -> None:
    facts = {VenvState: VenvReport(stamp=None), WheelhouseStamp: "abc123"}
    commands = run_op(venv, facts, cfg=cfg, lock=LOCK, wheelhouse=wheelhouse)
    assert uploads(commands) == []
    assert any("bin/pip install" in c for c in commands if isinstance(c, str))


def test_broken_package_is_reinstalled_alone(run_op, cfg, wheelhouse) -> None:
    facts = {VenvState: VenvReport(stamp="abc123", broken=["fastapi"]), WheelhouseStamp: "abc123"}
    (command,) = run_op(venv, facts, cfg=cfg, lock=LOCK, wheelhouse=wheelhouse)
    assert "--no-deps --force-reinstall fastapi==0.165.0" in command
    assert "torch" not in command


def test_online_mode_installs_the_same_lock_from_the_index(run_op, wheelhouse) -> None:
    cfg = HostConfig(
        name="vm",
        address="a",
        own_key=Path("/k"),
        install="online",
        index_url="https://download.pytorch.org/whl/cpu",
    )
    commands = run_op(venv, {VenvState: VenvReport(stamp=None)}, cfg=cfg, lock=LOCK)
    assert uploads(commands) == ["/home/student-admin/mlopsdeploy/mlopsdeploy-lock.txt"]
    install = next(c for c in commands if isinstance(c, str) and "bin/pip install" in c)
    assert "--index-url https://download.pytorch.org/whl/cpu" in install
    assert "--no-index" not in install


def test_os_packages_only_installs_what_is_missing(run_op) -> None:
    assert run_op(os_packages, {DebPackages: {"python3": ["3.11"], "python3-venv": ["3.11"]}}) == []
    commands = run_op(os_packages, {DebPackages: {"python3": ["3.11"]}})
    assert commands[-1].endswith("apt-get install -y -q python3-venv")
