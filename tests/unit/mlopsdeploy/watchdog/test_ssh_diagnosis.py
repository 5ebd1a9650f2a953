"""The SSH diagnosis against an in-process paramiko server on loopback: banner, host key,
which key logs in, and the unit state read over the same connection."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import paramiko
import pytest
from paramiko.common import AUTH_FAILED, AUTH_SUCCESSFUL, OPEN_SUCCEEDED

from mlopsdeploy.config import HostConfig
from mlopsdeploy.deployment.control.host_keys import known_hosts_entry
from mlopsdeploy.watchdog.diagnosis import HostKey, LoginKey
from mlopsdeploy.watchdog.ssh_check import diagnose

UNIT_OUTPUT = (
    b"== mlopsdeploy@1.service\n"
    b"LoadState=loaded\nActiveState=active\nSubState=running\nMainPID=42\nprocess Tl 7 307200\n"
    b"== mlopsdeploy@2.service\n"
    b"LoadState=loaded\nActiveState=active\nSubState=running\nMainPID=43\nprocess Sl 9 296000\n"
)


@dataclass
class FakeSshd(paramiko.ServerInterface):
    """Accepts `accepted` public keys for student-admin; answers every exec with UNIT_OUTPUT."""

    host_key: paramiko.PKey
    accepted: set[str] = field(default_factory=set)
    commands: list[str] = field(default_factory=list)

    def get_allowed_auths(self, username: str) -> str:
        return "publickey"

    def check_auth_publickey(self, username: str, key: paramiko.PKey) -> int:
        ok = username == "student-admin" and key.get_base64() in self.accepted
        return AUTH_SUCCESSFUL if ok else AUTH_FAILED

    def check_channel_request(self, kind: str, chanid: int) -> int:
        return OPEN_SUCCEEDED

    def check_channel_exec_request(self, channel: paramiko.Channel, command: bytes) -> bool:
        self.commands.append(command.decode())

        def answer() -> None:
            # This thread may run before the transport acknowledges the exec request. A close
            # sent ahead of that acknowledgement makes the client's exec_command fail with
            # "Channel closed", so the answer ends with EOF and the client closes the channel.
            channel.sendall(UNIT_OUTPUT)
            channel.send_exit_status(0)
            channel.shutdown_write()

        threading.Thread(target=answer, daemon=True).start()
        return True


@dataclass
class Lab:
    server: FakeSshd
    cfg: HostConfig
    own: paramiko.PKey
    default: paramiko.PKey


def new_key(path: Path) -> paramiko.PKey:
    key = paramiko.RSAKey.generate(1024)
    key.write_private_key_file(str(path))
    return key


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.2)
    server = FakeSshd(paramiko.RSAKey.generate(1024))
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            transport = paramiko.Transport(conn)
            transport.add_server_key(server.host_key)
            transport.start_server(server=server)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    own = new_key(tmp_path / "own")
    default = new_key(tmp_path / "default")
    cfg = HostConfig(
        name="vm1",
        address="127.0.0.1",
        ssh_port=listener.getsockname()[1],
        own_key=tmp_path / "own",
        default_key=tmp_path / "default",
        known_hosts=tmp_path / "known_hosts",
    )
    known = paramiko.HostKeys()
    known.add(known_hosts_entry(cfg), server.host_key.get_name(), server.host_key)
    known.save(str(cfg.known_hosts))
    try:
        yield Lab(server, cfg, own, default)
    finally:
        stop.set()
        thread.join()
        listener.close()


def test_own_key_logs_in_and_reads_the_unit_state(lab: Lab) -> None:
    lab.server.accepted = {lab.own.get_base64()}
    found = diagnose(lab.cfg)
    assert (found.host_key, found.login) == (HostKey.RECORDED, LoginKey.OWN)
    assert found.ssh_banner is not None and found.ssh_banner.startswith("SSH-2.0-")
    assert found.service is not None and found.service.stopped_process  # worker 1, hung
    assert [worker.main_pid for worker in found.workers] == [42, 43]
    assert "workers up 1/2 (rss MB 300/289)" in found.summary()
    assert "systemctl --user show mlopsdeploy@1.service" in lab.server.commands[0]
    assert "systemctl --user show mlopsdeploy@2.service" in lab.server.commands[0]


def test_home_wiped_host_takes_only_the_default_key(lab: Lab) -> None:
    lab.server.accepted = {lab.default.get_base64()}
    found = diagnose(lab.cfg)
    assert (found.login, found.service, lab.server.commands) == (LoginKey.DEFAULT, None, [])


def test_new_host_key_is_reported_as_changed(lab: Lab) -> None:
    lab.server.host_key = paramiko.RSAKey.generate(1024)
    lab.server.accepted = {lab.default.get_base64()}
    found = diagnose(lab.cfg)
    assert (found.host_key, found.login) == (HostKey.CHANGED, LoginKey.DEFAULT)


def test_no_key_accepted(lab: Lab) -> None:
    assert diagnose(lab.cfg).login == LoginKey.NONE


def test_nothing_listening_is_unreachable(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    cfg = HostConfig(name="gone", address="127.0.0.1", ssh_port=port, own_key=tmp_path / "k")
    found = diagnose(cfg, timeout_s=2)
    assert not found.reachable
    assert "refused" in (found.error or "").lower()
