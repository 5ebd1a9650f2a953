from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from mlopsdeploy.faults import CutNetwork, NotApplicable, Reboot, WipeHome, WipeVM


@dataclass
class FakeMachine:
    calls: list[str] = field(default_factory=list)

    def wipe(self) -> None:
        self.calls.append("wipe")

    def wipe_home(self) -> None:
        self.calls.append("wipe_home")

    def reboot(self) -> None:
        self.calls.append("reboot")

    def cut_network(self) -> None:
        self.calls.append("cut_network")

    def restore_network(self) -> None:
        self.calls.append("restore_network")


def test_machine_faults_use_the_host_side_controls(guest: Any, make_target: Any) -> None:
    machine = FakeMachine()
    target = make_target(guest, machine=machine)
    for fault in (WipeHome(), WipeVM(), Reboot(), CutNetwork()):
        fault.inject(target)
    CutNetwork().undo(target)
    assert machine.calls == ["wipe_home", "wipe", "reboot", "cut_network", "restore_network"]
    assert guest.commands == []


def test_reboot_without_machine_controls_is_not_faked_from_inside(
    guest: Any, make_target: Any
) -> None:
    """On a real VM the provider reboots it (reboot_command); without that it is skipped."""
    target = make_target(guest)
    assert "no host-side machine controls" in str(Reboot().not_applicable(target))
    with pytest.raises(NotApplicable):
        Reboot().inject(target)
    assert guest.commands == []
