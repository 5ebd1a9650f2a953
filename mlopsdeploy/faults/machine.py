"""Faults on the whole machine: wiped home, re-imaged VM, reboot, network link cut.

These go through the test VM's host-side controls (mlopsdeploy.testbed.TestVM), because a wipe
or a cut link cannot be done from inside the guest it takes away. A reboot can: on a target
without machine controls (a real VM) it is asked of the guest's systemd instead.
"""

from __future__ import annotations

from mlopsdeploy.faults.base import (
    Fault,
    Recovery,
    Target,
    WhileActive,
    require_machine,
)
from mlopsdeploy.faults.process import SELF_HEAL_SECONDS

#: What the deploy says when it cannot reach a host (pyinfra's and ssh's wordings).
UNREACHABLE = (
    r"(?i)unreachable|cannot reach|timed? ?out|no route|could not connect|connection refused"
)


class WipeHome(Fault):
    name = "home-wipe"
    breaks = (
        "the deploy user's home back to the image's pristine home: venv, releases, unit and"
        " the own key gone; only the shared default key is authorized again"
    )
    recovery = Recovery(bootstrap_with_default_key=True)
    needs_machine = True
    machine_control = "wipe_home"

    def inject(self, target: Target) -> None:
        require_machine(target, self.machine_control).wipe_home()


class WipeVM(Fault):
    name = "vm-wipe"
    breaks = (
        "the whole VM back to its pristine image: everything deployed is gone, the SSH host"
        " keys are new and only the shared default key is authorized"
    )
    recovery = Recovery(accept_new_host_key=True, bootstrap_with_default_key=True)
    needs_machine = True
    machine_control = "wipe"

    def inject(self, target: Target) -> None:
        require_machine(target, self.machine_control).wipe()


class Reboot(Fault):
    name = "reboot"
    breaks = "a guest reboot: every process stops; linger must bring the app back"
    recovery = Recovery(self_heal_seconds=SELF_HEAL_SECONDS)
    # On a real VM a reboot is the provider's (reboot_command): rebooting from inside would
    # also prove nothing about a power cycle the student did not ask for.
    needs_machine = True
    machine_control = "reboot"

    def inject(self, target: Target) -> None:
        require_machine(target, self.machine_control).reboot()


class CutNetwork(Fault):
    name = "network-cut"
    breaks = (
        "the VM's network link: the app keeps running but nothing reaches it, the deploy included"
    )
    recovery = Recovery(
        self_heal_seconds=SELF_HEAL_SECONDS,
        while_active=WhileActive(deploy_error=UNREACHABLE),
    )
    needs_machine = True
    machine_control = "cut_network"

    def inject(self, target: Target) -> None:
        require_machine(target, self.machine_control).cut_network()

    def undo(self, target: Target) -> None:
        require_machine(target, self.machine_control).restore_network()
