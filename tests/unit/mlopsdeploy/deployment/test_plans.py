"""The deploy refuses a host that cannot take the release, before changing anything."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlopsdeploy.config import HostConfig
from mlopsdeploy.deployment.control.bundle import ReleaseBundle
from mlopsdeploy.deployment.control.wheelhouse import Lock
from mlopsdeploy.deployment.facts.host import FreeSpaceMB, PortListeners
from mlopsdeploy.deployment.plans import Plan, _check_capacity, _check_port
from mlopsdeploy.errors import DeployError


@pytest.fixture
def plan(tmp_path: Path) -> Plan:
    wheelhouse = tmp_path / "wheelhouse"
    wheelhouse.mkdir()
    (wheelhouse / "torch.whl").write_bytes(b"x" * 3 * 2**20)
    model = tmp_path / "model.safetensors"
    model.write_bytes(b"x" * 2**20)
    return Plan(
        cfg=HostConfig(name="team10", address="a", own_key=Path("/k")),
        lock=Lock(text="torch==2.13.0+cpu\n", digest="d"),
        installer=tmp_path / "uv-0.13.8-py3-none-manylinux_2_17_x86_64.whl",
        wheelhouse=wheelhouse,
        bundle=ReleaseBundle(id="r-1", files={"model/model.safetensors": model}, model_version="m"),
        token="hf_secret_never_printed",
    )


def test_full_disk_is_refused_naming_host_and_sizes(plan: Plan, fake_host) -> None:
    with fake_host({FreeSpaceMB: 5}), pytest.raises(DeployError) as refused:
        _check_capacity(plan, venv_ok=False, staged=False)
    assert str(refused.value) == (
        "team10: not enough disk space for /home/student-admin/mlopsdeploy: "
        "~20 MB needed, 5 MB free"
    )


def test_nothing_to_push_needs_no_space(plan: Plan, fake_host) -> None:
    with fake_host({FreeSpaceMB: 0}) as host:
        _check_capacity(plan, venv_ok=True, staged=True)
    assert host.asked == []


def test_taken_port_names_the_listener(plan: Plan, fake_host) -> None:
    listener = 'LISTEN 0 5 0.0.0.0:8000 0.0.0.0:* users:(("python3",pid=99,fd=3))'
    with fake_host({PortListeners: [listener]}), pytest.raises(DeployError) as taken:
        _check_port(plan.cfg, 8000, "app port")
    assert str(taken.value) == f"team10: port 8000 (app port) is already taken: {listener}"


def test_plan_repr_hides_the_token(plan: Plan) -> None:
    assert "hf_secret_never_printed" not in repr(plan)
