"""Restarts: a lingering user service comes back after a power cycle and after a guest reboot;
data survives a pulled plug."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from mlopsdeploy.testbed import Image, TestVM
from mlopsdeploy.testbed.keys import generate_keypair, public_key
from mlopsdeploy.testbed.pytest_plugin import machine_name
from mlopsdeploy.testbed.ssh import banner

USER_SERVICE = (
    "mkdir -p ~/.config/systemd/user && "
    "printf '[Service]\\nExecStart=/bin/sleep infinity\\n[Install]\\nWantedBy=default.target\\n'"
    " > ~/.config/systemd/user/probe.service && "
    "sudo -n loginctl enable-linger $USER && "
    "systemctl --user daemon-reload && systemctl --user enable --now probe.service"
)


def user_service_state(vm: TestVM) -> str:
    """The probe service's state once the user manager has settled after boot."""
    return vm.run(
        "timeout 30 sh -c 'until systemctl --user is-system-running --wait >/dev/null 2>&1;"
        ' do [ "$(systemctl --user is-system-running)" = degraded ] && break; done\';'
        " systemctl --user is-active probe.service",
        check=False,
    ).stdout.strip()


def test_lingering_user_service_survives_power_cycle_and_reboot(test_vm: TestVM) -> None:
    test_vm.run(USER_SERVICE)
    assert user_service_state(test_vm) == "active"

    test_vm.power_off()
    assert not test_vm.is_running()
    assert banner(test_vm.address, 22, timeout=1) is None
    test_vm.power_on()
    assert user_service_state(test_vm) == "active"

    boots = test_vm.boot_count
    marker = test_vm.run("sudo -n touch /run/booted-before && echo ok").stdout.strip()
    test_vm.reboot()
    assert marker == "ok"
    assert test_vm.boot_count == boots + 1
    assert test_vm.run("test -e /run/booted-before", check=False).returncode == 1
    assert user_service_state(test_vm) == "active"


def test_forced_power_off_keeps_the_disk(test_vm: TestVM) -> None:
    test_vm.run("echo kept > ~/data && sync")
    test_vm.power_off(force=True)
    assert not test_vm.is_running()
    test_vm.power_on()
    assert test_vm.run("cat ~/data").stdout.strip() == "kept"


def test_reboot_needs_neither_the_default_key_nor_the_network(
    test_vm: TestVM, tmp_path: Path
) -> None:
    """As on a deployed machine, where the user's own key has replaced the default one."""
    own = generate_keypair(tmp_path / "own", "the user's own key")
    test_vm.run("cat > ~/.ssh/authorized_keys", input=public_key(own) + "\n")
    assert test_vm.run("true", check=False).returncode == 255
    test_vm.cut_network()
    boots = test_vm.boot_count

    test_vm.reboot()

    assert test_vm.boot_count == boots + 1
    test_vm.restore_network()
    assert test_vm.run("systemctl is-system-running", key=own).stdout.strip() == "running"


def test_concurrent_ups_boot_the_machine_once(testbed_image: Image) -> None:
    """Two handles (as two processes would) racing to boot one machine share one boot."""
    name = machine_name()
    handles = [TestVM(name, testbed_image), TestVM(name, testbed_image)]
    try:
        with ThreadPoolExecutor(max_workers=2) as pool:
            list(pool.map(lambda vm: vm.up(), handles))
        assert handles[0].boot_count == 1
        assert handles[1].run("systemctl is-system-running").stdout.strip() == "running"
    finally:
        handles[0].destroy()
