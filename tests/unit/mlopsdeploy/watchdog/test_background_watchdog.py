"""The watchdog as a real process: hosts file in, journal out, stopped by SIGTERM."""

from __future__ import annotations

import socket
import time
from pathlib import Path

from mlopsdeploy.config import HostConfig, load_file
from mlopsdeploy.watchdog.background import BackgroundWatchdog, write_hosts_file


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_hosts_file_round_trips_through_the_deploy_config(tmp_path: Path) -> None:
    cfg = HostConfig(
        name="team10",
        address="vm.example",
        own_key=tmp_path / "id",
        ssh_port=22010,
        default_key=tmp_path / "default",
        app_port=8010,
        known_hosts=tmp_path / "known_hosts",
    )
    assert load_file(write_hosts_file(tmp_path / "hosts.toml", [cfg])) == [cfg]


def test_unreachable_host_is_journaled_and_never_repaired(tmp_path: Path) -> None:
    port = closed_port()
    cfg = HostConfig(
        name="gone",
        address="127.0.0.1",
        own_key=tmp_path / "id",
        ssh_port=port,
        app_port=port,
        known_hosts=tmp_path / "known_hosts",
    )
    env = {"MLOPSDEPLOY_CONFIG": str(write_hosts_file(tmp_path / "hosts.toml", [cfg]))}
    started = time.time()
    with BackgroundWatchdog(tmp_path / "state", ["--interval", "0.2"], env) as watchdog:
        incident = watchdog.wait_incident(started, lambda i: bool(i.steps), timeout_s=60)
        assert watchdog.stop() == 0
    assert incident.host == "gone"
    assert "Connection refused" in incident.symptom
    assert [s.reason for s in incident.steps] == ["host unreachable: waiting for it"]
    assert incident.actions == []
    assert "stopping (signal 15)" in watchdog.log()
