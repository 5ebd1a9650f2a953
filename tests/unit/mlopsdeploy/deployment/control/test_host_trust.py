"""Unconfirmed host keys: written down beside known_hosts, cleared only by a person's trust."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlopsdeploy.config import ConfigError, HostConfig
from mlopsdeploy.deployment.control.host_trust import (
    awaiting_trust,
    mark_confirmed,
    mark_unconfirmed,
    pending_path,
    withheld_notice,
)
from mlopsdeploy.deployment.operations.service import render_env


def host(tmp_path: Path, name: str = "team10", port: int = 22010) -> HostConfig:
    return HostConfig(
        name=name,
        address="vm.example.org",
        own_key=Path("/k"),
        ssh_port=port,
        known_hosts=tmp_path / "known_hosts",
    )


def test_an_unconfirmed_key_withholds_secrets_until_confirmed(tmp_path: Path) -> None:
    cfg = host(tmp_path)
    assert awaiting_trust(cfg) is None and withheld_notice(cfg) is None
    mark_unconfirmed(cfg, "SHA256:new")
    assert awaiting_trust(cfg) == "SHA256:new"
    assert awaiting_trust(host(tmp_path, "team11", 22011)) is None  # per address and port
    notice = withheld_notice(cfg)
    assert notice is not None
    assert "SHA256:new" in notice and notice.endswith("run: mlopsdeploy trust team10")
    mark_confirmed(cfg)
    assert awaiting_trust(cfg) is None


def test_a_broken_record_is_an_error_not_a_guess(tmp_path: Path) -> None:
    cfg = host(tmp_path)
    pending_path(cfg).write_text("{not json")
    with pytest.raises(ConfigError, match=r"known_hosts\.unconfirmed"):
        awaiting_trust(cfg)


def test_env_file_without_trust_has_no_secret_but_says_why() -> None:
    content = render_env(None, (), awaiting_trust="SHA256:new")
    assert "HF_TOKEN=" not in content
    assert "APP_AWAITING_HOST_TRUST=SHA256:new\n" in content
