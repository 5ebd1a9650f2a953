"""Recording a host key: serialized with other writers, and the file replaced, never truncated."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

import paramiko
import pytest

from mlopsdeploy.config import HostConfig
from mlopsdeploy.deployment.control import host_keys


def host(name: str, port: int, known_hosts: Path) -> HostConfig:
    return HostConfig(
        name=name, address="10.0.0.1", ssh_port=port, own_key=Path("/k"), known_hosts=known_hosts
    )


def test_recording_keeps_other_entries_and_replaces_the_file(tmp_path: Path) -> None:
    path = tmp_path / "state" / "known_hosts"
    first, second = host("a", 2201, path), host("b", 2202, path)
    host_keys.record_host_key(first, paramiko.ECDSAKey.generate())
    inode = path.stat().st_ino
    key = paramiko.ECDSAKey.generate()
    host_keys.record_host_key(second, key)
    assert path.stat().st_ino != inode  # a new file renamed over the old: readers never see it cut
    assert host_keys.compare_host_key(second, key) == host_keys.HostKey.RECORDED
    known = paramiko.HostKeys(str(path))
    assert {host_keys.known_hosts_entry(first), host_keys.known_hosts_entry(second)} <= set(known)
    assert sorted(p.name for p in path.parent.iterdir()) == ["known_hosts", "known_hosts.lock"]
    assert path.stat().st_mode & 0o077 == 0


def test_the_edit_holds_the_lock_while_it_reads_and_writes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "known_hosts"
    saves: list[str] = []
    real_save = paramiko.HostKeys.save

    def save(known: paramiko.HostKeys, filename: str) -> None:
        with open(f"{path}.lock") as lock, pytest.raises(BlockingIOError):
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        saves.append(filename)
        real_save(known, filename)

    monkeypatch.setattr(paramiko.HostKeys, "save", save)
    host_keys.record_host_key(host("a", 2201, path), paramiko.ECDSAKey.generate())
    assert len(saves) == 1 and saves[0] != str(path) and not os.path.exists(saves[0])
