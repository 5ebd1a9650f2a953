"""A real VM's wipes and reboots go through its configured commands, else they are skipped."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlopsdeploy.config import HostConfig
from mlopsdeploy.faults import AppPaths, NotApplicable, Service, Target, by_name
from mlopsdeploy.resilience.real_vm import CommandMachine


class SilentGuest:
    def sh(self, command: str) -> str:
        raise AssertionError(f"a machine fault ran {command!r} in the guest")


def real_vm(cfg: HostConfig) -> Target:
    return Target(
        name=cfg.name,
        guest=SilentGuest(),
        service=Service("mlopsdeploy.service", 8000),
        paths=AppPaths(root="/r", venv="/r/venv", model_dir="/r/current/model"),
        machine=CommandMachine(cfg),
    )


def host(tmp_path: Path, **commands: str) -> HostConfig:
    return HostConfig(name="team10", address="vm.example", own_key=tmp_path / "k", **commands)


def test_without_commands_wipe_and_reboot_are_skipped_naming_the_key(tmp_path: Path) -> None:
    target = real_vm(host(tmp_path))
    assert by_name("vm-wipe").not_applicable(target) == (
        "team10: no reimage_command in its hosts.toml: wipe is done by the provider or a person"
    )
    assert "no reboot_command" in str(by_name("reboot").not_applicable(target))
    assert "no wipe_home_command" in str(by_name("home-wipe").not_applicable(target))
    assert "not a test VM" in str(by_name("network-cut").not_applicable(target))
    assert by_name("sigkill").not_applicable(target) is None
    with pytest.raises(NotApplicable, match="reimage_command"):
        by_name("vm-wipe").inject(target)


def test_configured_commands_run_on_the_control_machine_naming_the_vm(tmp_path: Path) -> None:
    log = tmp_path / "calls"
    target = real_vm(
        host(
            tmp_path,
            reimage_command=f'echo "wipe $MLOPSDEPLOY_HOST" >> {log}',
            reboot_command=f'echo "reboot $MLOPSDEPLOY_ADDRESS" >> {log}',
            wipe_home_command=f'echo "home $MLOPSDEPLOY_HOST" >> {log}',
        )
    )
    for name in ("vm-wipe", "reboot", "home-wipe"):
        fault = by_name(name)
        assert fault.not_applicable(target) is None
        fault.inject(target)
    assert log.read_text().splitlines() == ["wipe team10", "reboot vm.example", "home team10"]


def test_a_failing_command_is_an_error_with_its_output(tmp_path: Path) -> None:
    target = real_vm(host(tmp_path, reboot_command="echo provider says no >&2; exit 3"))
    with pytest.raises(RuntimeError, match="reboot_command exited 3: provider says no"):
        by_name("reboot").inject(target)
