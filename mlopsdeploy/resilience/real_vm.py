"""Machine controls of a real VM: the commands its hosts.toml names, run on the control machine.

A student's VM has no testbed API: re-imaging it or power-cycling it is done by the provider's
CLI or by a person. ``reimage_command``, ``reboot_command`` and ``wipe_home_command`` say how;
each must return once the VM is back (SSH answering). A fault needing a control without a
command is skipped, naming the missing key, instead of being faked from inside the guest.
"""

from __future__ import annotations

import os
import subprocess

from mlopsdeploy.config import HostConfig
from mlopsdeploy.faults import NotApplicable

#: Machine control -> the hosts.toml key whose command performs it on a real VM.
COMMAND_KEYS = {
    "wipe": "reimage_command",
    "reboot": "reboot_command",
    "wipe_home": "wipe_home_command",
}
COMMAND_TIMEOUT_S = 900.0


class CommandMachine:
    """``Machine`` controls backed by the host's configured commands."""

    def __init__(self, cfg: HostConfig) -> None:
        self.cfg = cfg

    def missing_control(self, control: str) -> str | None:
        """Why ``control`` cannot be done on this VM (no command configured), else None."""
        if not control:
            return None
        key = COMMAND_KEYS.get(control)
        if key is None:
            return f"{control} needs the testbed's host-side controls (not a test VM)"
        if getattr(self.cfg, key) is None:
            return f"no {key} in its hosts.toml: {control} is done by the provider or a person"
        return None

    def wipe(self) -> None:
        self._run("wipe")

    def reboot(self) -> None:
        self._run("reboot")

    def wipe_home(self) -> None:
        self._run("wipe_home")

    def cut_network(self) -> None:
        self._run("cut_network")

    def restore_network(self) -> None:
        self._run("restore_network")

    def _run(self, control: str) -> None:
        """Run the control's command through the shell; it names the VM via the environment."""
        if reason := self.missing_control(control):
            raise NotApplicable(f"{self.cfg.name}: {reason}")
        command = str(getattr(self.cfg, COMMAND_KEYS[control]))
        env = {
            **os.environ,
            "MLOPSDEPLOY_HOST": self.cfg.name,
            "MLOPSDEPLOY_ADDRESS": self.cfg.address,
        }
        result = subprocess.run(
            command,
            shell=True,  # the user's own command line from their hosts.toml
            env=env,
            capture_output=True,
            text=True,
            timeout=COMMAND_TIMEOUT_S,
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(
                f"{self.cfg.name}: {COMMAND_KEYS[control]} exited {result.returncode}: "
                f"{result.stderr.strip()[-500:]}"
            )
