from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from mlopsdeploy.faults import CommandFailed, CutNetwork, Reboot, WipeHome, WipeVM


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


def test_reboot_without_machine_controls_asks_the_guests_systemd(
    guest: Any, make_target: Any
) -> None:
    guest.answers["reboot"] = 255
    Reboot().inject(make_target(guest))
    assert guest.commands == ["sudo -n systemctl reboot"]
    guest.answers["reboot"] = 1
    with pytest.raises(CommandFailed):
        Reboot().inject(make_target(guest))
