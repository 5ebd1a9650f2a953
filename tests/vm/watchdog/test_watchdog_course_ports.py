"""Deploy and watchdog on the course's port layout: SSH on 22010, the app on 8010, behind a NAT.

The VM's testbed rules reject every connection from the control machine to the guest's own
port 22 or the app's internal port that did not come through the forwards, so a code path that
still assumed either would fail here instead of passing by luck.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from watched_vm import WatchedHost

from mlopsdeploy.deployment.api import deploy
from mlopsdeploy.deployment.control.ssh_login import ensure_keypair
from mlopsdeploy.deployment.results import DeployOptions
from mlopsdeploy.faults import StopService
from mlopsdeploy.resilience.subjects import deployed_target
from mlopsdeploy.testbed import ssh
from mlopsdeploy.testbed.image import Image
from mlopsdeploy.testbed.machine import TestVM
from mlopsdeploy.testbed.nat import PortForwards
from mlopsdeploy.testbed.pytest_plugin import machine_name
from mlopsdeploy.testbed.target import testbed_host as host_config
from mlopsdeploy.watchdog.background import BackgroundWatchdog, write_hosts_file

pytestmark = [pytest.mark.vm, pytest.mark.xdist_group("watchdog-course-ports")]

COURSE = PortForwards(ssh=22010, app=8010, app_target=8000)
STARTUP_S = 180.0
RESTART_S = 180.0


@pytest.fixture(scope="module")
def course_host(
    testbed_image: Image, sentiment_model_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[WatchedHost]:
    """A VM reached only through the course's forwards, deployed once for the module."""
    work = tmp_path_factory.mktemp("course")
    vm = TestVM(machine_name(), testbed_image, forwards=COURSE)
    try:
        vm.up()
        key = ensure_keypair(work / "own-key")
        cfg = host_config(vm, key=key, known_hosts=work / "known_hosts")
        options = DeployOptions(model_dir=sentiment_model_dir, accept_new_host_key=True)
        result = deploy([cfg], options).hosts[0]
        assert result.ok, f"deploy through the course's ports failed: {result.error}"
        hosts_file = write_hosts_file(work / "hosts.toml", [cfg])
        target = deployed_target(cfg, machine=vm, api=None)
        yield WatchedHost(vm, cfg, target, hosts_file, sentiment_model_dir)
    finally:
        vm.destroy()


def test_deploy_serves_on_the_public_port_only(course_host: WatchedHost) -> None:
    cfg, vm = course_host.cfg, course_host.vm
    assert (cfg.address, cfg.ssh_port, cfg.app_port) == (vm.host_address, 22010, 8010)
    assert course_host.labels_correct() is None
    assert course_host.default_key_rejected()
    # The inner ports exist (sshd, the app's unit) but are not reachable around the NAT.
    assert ssh.banner(vm.address, 22, timeout=2) is None
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://{vm.address}:{COURSE.app_target}/livez", timeout=5)
    listening = vm.run("ss -Hltn 'sport = :8000'", key=cfg.own_key).stdout
    assert "0.0.0.0:8000" in listening or "*:8000" in listening


def test_watchdog_detects_and_recovers_a_stopped_service(
    course_host: WatchedHost, tmp_path: Path
) -> None:
    env = {
        "MLOPSDEPLOY_CONFIG": str(course_host.hosts_file),
        "MLOPSDEPLOY_MODEL_DIR": str(course_host.model_dir),
    }
    options = ["--interval", "1", "--cooldown", "5"]
    with BackgroundWatchdog(tmp_path / "state", options, env) as watchdog:
        watchdog.wait_log(f"{course_host.cfg.name} healthy", STARTUP_S)
        injected = time.time()
        StopService().inject(course_host.target)
        incident = watchdog.wait_incident(injected, lambda i: i.state == "recovered", RESTART_S)
    # Detected through the public port, closed as recovered (by a restart, or by systemd's
    # socket bringing a worker back first), and the app answers correctly through the NAT.
    assert incident.steps and incident.state == "recovered"
    assert all(action.result == "ok" for action in incident.actions)
    assert course_host.labels_correct() is None
