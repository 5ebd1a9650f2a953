"""Faults on the app's processes: killed, hung, stopped, or the whole user session gone.

Every signal goes to the pid systemd records as the unit's MainPID, looked up inside the guest:
never a name or pattern, which on an nspawn testbed could hit the control machine's processes.
"""

from __future__ import annotations

from mlopsdeploy.faults.base import CommandFailed, Fault, Recovery, Target

#: systemd restarts a dead app after its restart delay (a hung one after its watchdog timeout,
#: 20 s); the app then loads torch and its model, which took 40 s on a busy 2-core machine.
#: Past this the suite stops waiting for systemd and redeploys.
SELF_HEAL_SECONDS = 120.0

#: ssh's own exit status when the session dies under it — expected when the fault kills it.
SSH_SESSION_LOST = 255


class KillApp(Fault):
    name = "sigkill"
    breaks = "SIGKILL to the app's main process: it dies without any cleanup"
    recovery = Recovery(self_heal_seconds=SELF_HEAL_SECONDS)

    def inject(self, target: Target) -> None:
        target.guest.sh(target.service.signal_main("KILL"))


class HangApp(Fault):
    name = "sigstop"
    breaks = (
        "SIGSTOP to the app's main process: it still exists and holds its port but answers nothing"
    )
    recovery = Recovery(self_heal_seconds=SELF_HEAL_SECONDS)

    def inject(self, target: Target) -> None:
        target.guest.sh(target.service.signal_main("STOP"))

    def undo(self, target: Target) -> None:
        """Continue the stopped process if it is still the unit's main process."""
        target.guest.sh(f"{target.service.signal_main('CONT')} || true")


class StopService(Fault):
    name = "service-stop"
    breaks = (
        "`systemctl stop` of the app's unit: a deliberate stop that Restart=always does not undo"
    )
    recovery = Recovery()

    def inject(self, target: Target) -> None:
        target.guest.sh(target.service.systemctl("stop", target.service.unit))


class KillUser(Fault):
    name = "kill-user"
    breaks = (
        "SIGKILL to every process of the deploy user inside the guest, user@UID.service included:"
        " lingering user services stay down until the user manager is started again"
    )
    recovery = Recovery()

    def inject(self, target: Target) -> None:
        try:
            target.guest.sh('sudo -n pkill -KILL -u "$(id -u)"')
        except CommandFailed as error:
            if error.returncode != SSH_SESSION_LOST:
                raise
