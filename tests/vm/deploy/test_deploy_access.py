"""SSH access and bad input: what the deploy does before it touches the app.

Each test gets a fresh VM; none needs a deployed app, so they are quick.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from deploy_helpers import Control, remote

from mlopsdeploy.deployment.api import deploy, ensure_access
from mlopsdeploy.deployment.control.host_keys import check_host_key
from mlopsdeploy.deployment.control.ssh_login import ensure_keypair, key_logs_in
from mlopsdeploy.errors import AccessError, HostKeyChangedError
from mlopsdeploy.testbed import TestVM

pytestmark = pytest.mark.vm


def test_bootstrap_replaces_default_key_then_is_idempotent(
    test_vm: TestVM, fresh_control: Control
) -> None:
    cfg = fresh_control.host(test_vm)
    assert check_host_key(cfg) == "recorded"  # first contact: trusted and written down
    assert not key_logs_in(cfg, fresh_control.key)
    ensure_access(cfg)
    assert key_logs_in(cfg, fresh_control.key)
    keys = remote(test_vm, fresh_control, "cat ~/.ssh/authorized_keys")
    ensure_access(cfg)  # own key works now: nothing to bootstrap
    assert remote(test_vm, fresh_control, "cat ~/.ssh/authorized_keys") == keys


def test_changed_host_key_is_refused_until_accepted(
    test_vm: TestVM, fresh_control: Control
) -> None:
    cfg = fresh_control.host(test_vm)
    ensure_access(cfg)
    test_vm.wipe()  # re-imaged: new host keys, pristine home with the default key only
    with pytest.raises(HostKeyChangedError) as refused:
        ensure_access(cfg)
    message = str(refused.value)
    assert message.startswith(f"{cfg.name}: the SSH host key of {cfg.address} changed")
    assert "--accept-new-host-key" in message
    ensure_access(cfg, accept_new_host_key=True)
    assert check_host_key(cfg) == "known"  # the new key was recorded
    assert key_logs_in(cfg, fresh_control.key)


def test_wrong_keys_are_named(test_vm: TestVM, fresh_control: Control, tmp_path: Path) -> None:
    stranger = ensure_keypair(tmp_path / "stranger")
    cfg = fresh_control.host(
        test_vm, own_key=stranger, default_key=ensure_keypair(tmp_path / "not-the-default")
    )
    with pytest.raises(AccessError) as refused:
        ensure_access(cfg)
    message = str(refused.value)
    assert message.startswith(f"{cfg.name}: neither your key {stranger}")
    assert "not-the-default" in message


def test_unreachable_host_is_named(test_vm: TestVM, fresh_control: Control) -> None:
    cfg = fresh_control.host(test_vm)
    test_vm.cut_network()
    try:
        with pytest.raises(AccessError, match=rf"^{cfg.name}: cannot reach {cfg.address}:22"):
            ensure_access(cfg)
    finally:
        test_vm.restore_network()


def test_taken_app_port_is_refused_before_anything_is_installed(
    test_vm: TestVM, fresh_control: Control, sentiment_model_dir: Path
) -> None:
    test_vm.run("setsid python3 -m http.server 8000 </dev/null >/dev/null 2>&1 &")
    cfg = fresh_control.host(test_vm)
    result = deploy([cfg], fresh_control.options(sentiment_model_dir)).hosts[0]
    assert not result.ok
    assert str(result.error).startswith(f"{cfg.name}: port 8000 (app port) is already taken")
    assert remote(test_vm, fresh_control, "ls ~/mlopsdeploy 2>/dev/null | wc -l").strip() == "0"
