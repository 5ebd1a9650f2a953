"""SSH plumbing: strict host keys from the machine's own file, never the user's ~/.ssh."""

from __future__ import annotations

import socket
import threading
from pathlib import Path

from mlopsdeploy.testbed.ssh import banner, known_hosts_lines, ssh_argv


def test_ssh_argv_pins_key_user_and_known_hosts(tmp_path: Path) -> None:
    argv = ssh_argv("10.213.7.2", "student-admin", tmp_path / "key", tmp_path / "kh", command="id")
    assert argv[0] == "ssh"
    assert argv[argv.index("-i") + 1] == str(tmp_path / "key")
    assert f"UserKnownHostsFile={tmp_path / 'kh'}" in argv
    assert "StrictHostKeyChecking=yes" in argv
    assert "IdentitiesOnly=yes" in argv
    assert "GlobalKnownHostsFile=/dev/null" in argv
    assert not any(".ssh" in arg for arg in argv)
    assert argv[-3:] == ["student-admin@10.213.7.2", "--", "id"]


def test_known_hosts_lines_come_from_the_guests_host_keys(tmp_path: Path) -> None:
    ssh_dir = tmp_path / "etc" / "ssh"
    ssh_dir.mkdir(parents=True)
    (ssh_dir / "ssh_host_ed25519_key.pub").write_text("ssh-ed25519 AAAAblob root@old-name\n")
    (ssh_dir / "ssh_host_ed25519_key").write_text("PRIVATE, must never be read\n")
    assert known_hosts_lines("10.213.7.2", 22, tmp_path) == ["10.213.7.2 ssh-ed25519 AAAAblob"]
    assert known_hosts_lines("10.213.7.2", 2222, tmp_path) == [
        "[10.213.7.2]:2222 ssh-ed25519 AAAAblob"
    ]


def serve_once(greeting: bytes) -> tuple[socket.socket, int]:
    server = socket.create_server(("127.0.0.1", 0))

    def answer() -> None:
        conn, _ = server.accept()
        with conn:
            conn.sendall(greeting)

    threading.Thread(target=answer, daemon=True).start()
    return server, server.getsockname()[1]


def test_banner_recognises_an_ssh_server_only() -> None:
    server, port = serve_once(b"SSH-2.0-OpenSSH_9.2p1 Debian\r\n")
    with server:
        assert banner("127.0.0.1", port, timeout=5) == "SSH-2.0-OpenSSH_9.2p1 Debian"
    server, port = serve_once(b"HTTP/1.1 400 Bad Request\r\n")
    with server:
        assert banner("127.0.0.1", port, timeout=5) is None


def test_banner_is_none_when_nothing_listens() -> None:
    with socket.create_server(("127.0.0.1", 0)) as probe:
        port = probe.getsockname()[1]
    assert banner("127.0.0.1", port, timeout=1) is None
