"""HAProxy operations: what they send to a host without HAProxy, nothing to one that has it."""

from __future__ import annotations

from pathlib import Path

import pytest
from pyinfra.api import FileUploadCommand
from pyinfra.api.operation import OperationMeta
from pyinfra.connectors.util import CommandOutput
from pyinfra.facts.deb import DebPackages

from mlopsdeploy.config import HostConfig
from mlopsdeploy.deployment.facts.haproxy import FileText
from mlopsdeploy.deployment.facts.service import ServiceStatus, UnitStatus
from mlopsdeploy.deployment.operations.haproxy import (
    config_file,
    packages_installed,
    service_running,
)
from mlopsdeploy.errors import DeployError

INSTALLED = {"haproxy": ["2.6.12-1+deb12u4"], "socat": ["1.7.4.4-2"]}


@pytest.fixture
def cfg() -> HostConfig:
    return HostConfig(name="lb", address="a", own_key=Path("/k"), groups=("lb",))


def test_installed_packages_send_nothing(run_op, cfg) -> None:
    assert run_op(packages_installed, {DebPackages: INSTALLED}, cfg=cfg) == []


def test_offline_host_gets_the_debs_pushed_and_installed_by_dpkg(run_op, cfg) -> None:
    debs = (Path("/pool/haproxy_2.6_amd64.deb"), Path("/pool/socat_1.7_amd64.deb"))
    commands = run_op(packages_installed, {DebPackages: {}}, cfg=cfg, debs=debs)
    uploads = [c for c in commands if isinstance(c, FileUploadCommand)]
    assert [u.src for u in uploads] == [str(d) for d in debs]
    install = commands[-1]
    pushed = "/home/student-admin/mlopsdeploy/lb/debs"
    assert f"-i {pushed}/haproxy_2.6_amd64.deb {pushed}/socat_1.7_amd64.deb" in install
    assert "apt-get -q update" not in " ".join(str(c) for c in commands)


def test_offline_host_without_debs_is_refused_by_name(run_op, cfg) -> None:
    with pytest.raises(DeployError, match=r"^lb: haproxy, socat missing"):
        run_op(packages_installed, {DebPackages: {}}, cfg=cfg)


def test_online_host_installs_from_its_mirror(run_op) -> None:
    cfg = HostConfig(name="lb", address="a", own_key=Path("/k"), install="online")
    commands = run_op(packages_installed, {DebPackages: {"socat": ["1"]}}, cfg=cfg)
    assert commands[0].endswith("apt-get -q update")
    assert commands[1].endswith("install haproxy socat")


def test_config_is_checked_by_haproxy_before_it_replaces_the_one_in_use(run_op, cfg) -> None:
    commands = run_op(config_file, {FileText: "old\n"}, cfg=cfg, text="new\n")
    upload = next(c for c in commands if isinstance(c, FileUploadCommand))
    assert upload.src.read() == "new\n"
    assert commands[-1] == (
        "sudo -n haproxy -c -q -f /home/student-admin/mlopsdeploy/lb/haproxy.cfg && "
        "sudo -n install -m 0644 /home/student-admin/mlopsdeploy/lb/haproxy.cfg "
        "/etc/haproxy/haproxy.cfg"
    )
    assert run_op(config_file, {FileText: "new\n"}, cfg=cfg, text="new\n") == []


def finished(changed: bool) -> OperationMeta:
    meta = OperationMeta("hash", is_change=None)
    meta.set_complete(True, ["cmd"] if changed else [], CommandOutput([]))
    return meta


@pytest.mark.parametrize(
    ("active", "changed", "expected"),
    [
        (True, False, []),
        (True, True, ["reload"]),
        (False, True, ["start"]),
        (False, False, ["start"]),
    ],
)
def test_service_is_reloaded_on_change_never_restarted(run_op, active, changed, expected) -> None:
    status = UnitStatus(active=active, enabled=True, linger=False)
    commands = run_op(service_running, {ServiceStatus: status}, after=(finished(changed),))
    assert [c.split()[-2] for c in commands] == expected
