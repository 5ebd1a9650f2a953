"""The host key check: a changed key is refused with a message saying what to do."""

from __future__ import annotations

from pathlib import Path

import paramiko
import pytest

from mlopsdeploy.config import HostConfig
from mlopsdeploy.deployment.control import host_keys
from mlopsdeploy.errors import HostKeyChangedError


def test_a_changed_host_key_is_refused_naming_the_flag(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    cfg = HostConfig(
        name="team10",
        address="vm.course.example.org",
        ssh_port=22010,
        own_key=Path("/k"),
        known_hosts=tmp_path / "known_hosts",
    )
    before, now = paramiko.ECDSAKey.generate(), paramiko.ECDSAKey.generate()
    recorded = paramiko.HostKeys()
    entry = host_keys.known_hosts_entry(cfg)
    recorded.add(entry, before.get_name(), before)
    recorded.save(str(cfg.known_hosts))
    monkeypatch.setattr(host_keys, "server_host_key", lambda cfg: now)
    with pytest.raises(HostKeyChangedError) as refused:
        host_keys.check_host_key(cfg)
    assert str(refused.value) == (
        "team10: the SSH host key of [vm.course.example.org]:22010 changed "
        f"(now {now.fingerprint}). If the VM was re-imaged or wiped, rerun with "
        "--accept-new-host-key to trust and record the new key; otherwise someone may be "
        f"intercepting the connection. Recorded in {cfg.known_hosts}"
    )
