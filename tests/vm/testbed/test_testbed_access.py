"""A fresh machine looks like a freshly issued course VM: SSH with the default key only,
a sudo user, systemd as PID 1 that finished booting."""

from __future__ import annotations

from pathlib import Path

from mlopsdeploy.testbed import TestVM
from mlopsdeploy.testbed.keys import generate_keypair


def test_default_key_logs_in_as_the_sudo_user(module_vm: TestVM) -> None:
    out = module_vm.run("whoami; hostname; sudo -n whoami").stdout.split()
    assert out == [module_vm.user, module_vm.name, "root"]


def test_systemd_is_pid_1_and_running(module_vm: TestVM) -> None:
    assert module_vm.run("cat /proc/1/comm").stdout.strip() == "systemd"
    state = module_vm.run("systemctl is-system-running", check=False).stdout.strip()
    failed = module_vm.run("systemctl --failed --no-legend", check=False).stdout
    assert state == "running", failed


def test_an_unknown_key_is_refused(module_vm: TestVM, tmp_path: Path) -> None:
    stranger = generate_keypair(tmp_path / "stranger", "not the course key")
    result = module_vm.run("true", key=stranger, check=False)
    assert result.returncode == 255
    assert "Permission denied" in result.stderr


def test_password_login_is_disabled(module_vm: TestVM) -> None:
    config = module_vm.run("sudo -n sshd -T").stdout.splitlines()
    assert "passwordauthentication no" in config
    assert "kbdinteractiveauthentication no" in config


def test_host_keys_are_checked_against_the_machines_own(module_vm: TestVM) -> None:
    """run() trusts only the keys in the VM's known_hosts; a wrong entry fails the login."""
    original = module_vm.known_hosts.read_text()
    try:
        forged = generate_keypair(module_vm.dir / "forged", "forged host key")
        entry = forged.with_name("forged.pub").read_text().split()[:2]
        module_vm.known_hosts.write_text(f"{module_vm.address} {' '.join(entry)}\n")
        result = module_vm.run("true", check=False)
        assert result.returncode == 255
        assert "Host key verification failed" in result.stderr
    finally:
        module_vm.known_hosts.write_text(original)
    assert module_vm.run("true").returncode == 0
