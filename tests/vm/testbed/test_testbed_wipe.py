"""Wipes: the whole machine back to a fresh image, or only the user's home."""

from __future__ import annotations

from pathlib import Path

from mlopsdeploy.testbed import TestVM
from mlopsdeploy.testbed.keys import generate_keypair, public_key


def add_key(vm: TestVM, tmp_path: Path) -> Path:
    """Authorize a second key (as a deploy would) and prove it works before any wipe."""
    extra = generate_keypair(tmp_path / "extra", "second key")
    vm.run("cat >> ~/.ssh/authorized_keys", input=public_key(extra) + "\n")
    assert vm.run("true", key=extra).returncode == 0
    return extra


def test_wipe_restores_the_pristine_machine_with_new_host_keys(
    test_vm: TestVM, tmp_path: Path
) -> None:
    extra = add_key(test_vm, tmp_path)
    test_vm.run("touch ~/mine && sudo -n touch /etc/mine")
    before = test_vm.host_key_fingerprint()

    test_vm.wipe()

    assert test_vm.host_key_fingerprint() != before
    assert test_vm.run("ls ~/mine /etc/mine", check=False).returncode == 2
    assert test_vm.run("true", key=extra, check=False).returncode == 255
    assert test_vm.run("whoami").stdout.strip() == test_vm.user


def test_wipe_home_restores_the_pristine_home_only(test_vm: TestVM, tmp_path: Path) -> None:
    extra = add_key(test_vm, tmp_path)
    test_vm.run("touch ~/mine && sudo -n touch /etc/kept")
    before = test_vm.host_key_fingerprint()

    test_vm.wipe_home()

    assert test_vm.run("test -e ~/mine", check=False).returncode == 1
    keys = test_vm.run("cat ~/.ssh/authorized_keys").stdout.splitlines()
    assert keys == [public_key(test_vm.default_key)]
    assert test_vm.run("true", key=extra, check=False).returncode == 255
    assert test_vm.run("test -e /etc/kept", check=False).returncode == 0
    assert test_vm.host_key_fingerprint() == before
