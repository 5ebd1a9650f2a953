"""Machine-level faults of a TestVM: power, reboot, re-image, home wipe, a cut network link.

A mixin of TestVM: these need its lifecycle internals (stop, overlay, console) but are a job of
their own, the faults a course VM suffers that the resilience suite and the watchdog must survive.
"""

from __future__ import annotations

import subprocess
import time
from typing import Self

from mlopsdeploy.testbed.guest import guest_exec
from mlopsdeploy.testbed.handle import MachineHandle
from mlopsdeploy.testbed.locking import exclusive


class MachinePower(MachineHandle):
    """Power, re-image and network faults."""

    @exclusive
    def power_off(self, force: bool = False, timeout: float = 30) -> None:
        """Shut the machine down: orderly (guest runs its shutdown) or, with `force`, by
        killing its init — the pulled plug."""
        self._stop(force=force, timeout=timeout)
        self.overlay.unmount()

    def power_on(self, timeout: float = 60) -> Self:
        return self.up(timeout)

    @exclusive
    def reboot(self, timeout: float = 60) -> None:
        """`systemctl reboot` in the guest; returns once it is back and ready.

        Issued through the host-side console, so it works with the network cut too. The guest's
        exit code 133 makes the supervisor boot it again.
        """
        before = self.boot_count
        guest_exec(self._init(), ["systemctl", "reboot"])
        deadline = time.monotonic() + timeout
        while self.boot_count <= before:
            self._check_alive()
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.name} did not restart after reboot")
            time.sleep(0.05)
        self.wait_ready(deadline - time.monotonic())

    @exclusive
    def wipe(self, timeout: float = 60) -> None:
        """Re-image: the whole disk back to the pristine image (new host keys, only the
        default key), running again."""
        self._stop(force=True, timeout=10)
        self.overlay.unmount()
        self.overlay.discard_changes()
        self.known_hosts.unlink(missing_ok=True)
        self.up(timeout)

    @exclusive
    def wipe_home(self) -> None:
        """Restore the user's home to the image's pristine home (only the default key).

        The machine keeps running. The user's sessions and systemd user manager are stopped
        first (a home swapped under running processes would be neither wiped nor intact), then
        the user manager is started again if the user lingers — but the user's own unit files
        were in the home, so lingering services are gone until a deploy restores them. System
        services that merely run as the user are left alone.
        """
        init = self._init()
        guest_exec(init, ["systemctl", "stop", f"user@{self.uid}.service"])
        guest_exec(init, ["loginctl", "terminate-user", self.user], check=False)
        home = self.rootfs / "home" / self.user
        pristine = self.overlay.lower / "home" / self.user
        subprocess.run(["rm", "-rf", "--one-file-system", str(home)], check=True)
        subprocess.run(["cp", "-a", str(pristine), str(home)], check=True)
        if (self.rootfs / "var/lib/systemd/linger" / self.user).exists():
            guest_exec(init, ["systemctl", "start", f"user@{self.uid}.service"])

    def cut_network(self) -> None:
        """Unplug the machine's link: it keeps running but nothing reaches it."""
        self.link.set_up(False)

    def restore_network(self) -> None:
        self.link.set_up(True)
