"""Reaching a TestVM's guest as a user would: SSH commands, the served host key, readiness.

A mixin of TestVM. Readiness is checked from the host side (systemd's state on the console, then
sshd's banner), not by logging in: a deployed machine may rightly refuse the default key.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

from mlopsdeploy.testbed import ssh
from mlopsdeploy.testbed.guest import guest_exec
from mlopsdeploy.testbed.handle import MachineHandle

READY_STATES = ("running", "degraded")


class CommandFailed(subprocess.CalledProcessError):
    """A command run over SSH exited non-zero; the message carries its stderr."""

    def __str__(self) -> str:
        stderr = (self.stderr or "").strip()[-2000:]
        return f"{super().__str__()}\nstderr: {stderr}"


class GuestAccess(MachineHandle):
    """SSH and console access."""

    def ssh_argv(
        self,
        command: str | None = None,
        key: Path | None = None,
        user: str | None = None,
        tty: bool = False,
    ) -> list[str]:
        """The OpenSSH command line to reach the machine (default key and user)."""
        return ssh.ssh_argv(
            self.ssh_address,
            user or self.user,
            key or self.default_key,
            self.known_hosts,
            port=self.ssh_port,
            command=command,
            tty=tty,
        )

    def run(
        self,
        command: str,
        *,
        key: Path | None = None,
        user: str | None = None,
        check: bool = True,
        timeout: float = 120,
        input: str | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run a shell command on the machine over SSH, as a user would.

        Raises CommandFailed (with stderr) on a non-zero exit when `check`; exit code 255 is
        ssh's own failure (refused, unreachable, key rejected).
        """
        argv = self.ssh_argv(command, key=key, user=user)
        result = subprocess.run(
            argv,
            input=input,
            stdin=None if input is not None else subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if check and result.returncode != 0:
            raise CommandFailed(result.returncode, argv, result.stdout, result.stderr)
        return result

    def host_key_fingerprint(self) -> str:
        """SHA256 fingerprint of the ed25519 host key sshd serves now (via ssh-keyscan)."""
        return ssh.served_host_key_fingerprint(self.ssh_address, self.ssh_port)

    def wait_ready(self, timeout: float = 60) -> str:
        """Wait until the guest finished booting and sshd answers; return systemd's state.

        Checked from the host side — `systemctl is-system-running --wait` on the guest's
        console, then sshd's banner on the network — not by logging in: a deployed machine
        may rightly refuse the default key. With the link cut, only the console is checked.
        """
        deadline = time.monotonic() + timeout
        state = "not booted"
        while True:
            self._check_alive()
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(
                    f"{self.name} not ready after {timeout:.0f}s: {state}\n{self._diagnosis()}"
                )
            state = self._system_state(remaining)
            if state in READY_STATES and (
                self.network_is_cut()
                or ssh.banner(self.ssh_address, self.ssh_port, timeout=min(remaining, 1.0))
            ):
                self._refresh_known_hosts()
                return state
            time.sleep(0.05)

    def _diagnosis(self) -> str:
        """Failed units, sshd's log and the console's end: what a boot that never got
        ready needs explained."""
        try:
            init = self._init()
            failed = guest_exec(init, ["systemctl", "--failed", "--no-legend"], check=False)
            journal = ["journalctl", "-b", "--no-pager", "-n", "20", "-u", "ssh.service"]
            sshd = guest_exec(init, journal, check=False)
        except (RuntimeError, subprocess.TimeoutExpired) as error:
            return f"guest unreachable on its console ({error})\n{self.console_log()}"
        return f"failed units:\n{failed.stdout}\nssh.service:\n{sshd.stdout}\n{self.console_log()}"

    def _system_state(self, timeout: float) -> str:
        """systemd's state once its boot is over, or why it cannot be asked yet."""
        try:
            result = guest_exec(
                self._init(),
                ["systemctl", "is-system-running", "--wait"],
                timeout=timeout,
                check=False,
            )
        except (RuntimeError, subprocess.TimeoutExpired) as error:
            return f"unknown ({error})"
        return result.stdout.strip() or result.stderr.strip()

    def console_log(self, lines: int = 40) -> str:
        """The end of the guest's console output (boot messages), for error reports."""
        log = self.dir / "console.log"
        if not log.exists():
            return ""
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
