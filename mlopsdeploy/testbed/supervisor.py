"""Keeps one machine's systemd-nspawn running across guest reboots.

There is no systemd on the host to do what systemd-nspawn@.service does, so the testbed starts
this small process per machine (in its own session, detached from the caller's terminal):

    python -m mlopsdeploy.testbed.supervisor MACHINE_DIR [--cgroup NAME] -- systemd-nspawn ...

A guest `reboot` makes nspawn exit with 133; the supervisor then boots it again. Any other exit
(power-off, a killed init, an error) ends the supervisor. SIGTERM means "shut the machine down":
it is passed on to nspawn, which asks the guest's init for an orderly power-off, and nothing is
restarted afterwards. Files written in MACHINE_DIR: `nspawn.pid` (the running nspawn),
`boots` (how many times nspawn was started: a reboot is visible as an increment), `console.log`
(the guest's console) and `exit-status` (nspawn's last exit code). With --cgroup, nspawn runs in
the machine's own cgroups (see cgroups.py); the supervisor itself stays where it was started.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path
from types import FrameType

from mlopsdeploy.testbed import cgroups
from mlopsdeploy.testbed.files import write_atomically
from mlopsdeploy.testbed.processes import ProcessId

REBOOT_EXIT_CODE = 133


def nspawn_argv(name: str, rootfs: Path, netns_path: Path) -> list[str]:
    """The systemd-nspawn command line that boots machine ``name`` from ``rootfs``.

    ``--register=no --keep-unit``: the host has no systemd or dbus to register with.
    """
    return [
        "systemd-nspawn",
        "--quiet",
        f"--directory={rootfs}",
        "--boot",
        f"--machine={name}",
        "--register=no",
        "--keep-unit",
        f"--network-namespace-path={netns_path}",
        # Root on a real VM manages its network; the namespace keeps that to its own link.
        "--capability=CAP_NET_ADMIN",
        "--resolv-conf=off",
        "--timezone=off",
        "--link-journal=no",
        "--console=read-only",
    ]


def launch(machine_dir: Path, name: str, nspawn: list[str]) -> subprocess.Popen[bytes]:
    """Start this supervisor for ``nspawn`` in a session of its own, logging to the machine dir."""
    argv = [sys.executable, "-m", "mlopsdeploy.testbed.supervisor", str(machine_dir)]
    argv += ["--cgroup", name, "--", *nspawn]
    with (machine_dir / "supervisor.log").open("ab") as log:
        return subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def supervise(machine_dir: Path, command: list[str], cgroup: str | None = None) -> int:
    """Run `command` until it exits with anything but 133 or SIGTERM arrives; return its code."""
    into = cgroups.create(cgroup) if cgroup else []
    stopping = False
    child: subprocess.Popen[bytes] | None = None

    def on_sigterm(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True
        if child is not None and child.poll() is None:
            child.send_signal(signal.SIGTERM)

    signal.signal(signal.SIGTERM, on_sigterm)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    boots = machine_dir / "boots"
    pid_file = machine_dir / "nspawn.pid"
    while True:
        count = int(boots.read_text()) if boots.exists() else 0
        write_atomically(boots, f"{count + 1}\n")
        with (machine_dir / "console.log").open("ab") as console:
            # preexec_fn is safe here: the supervisor never starts threads.
            child = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=console,
                stderr=subprocess.STDOUT,
                preexec_fn=(lambda: cgroups.enter(into)) if into else None,
            )
        identity = ProcessId.of(child.pid)
        if identity is not None:
            identity.write(pid_file)
        if stopping:
            child.send_signal(signal.SIGTERM)
        code = child.wait()
        pid_file.unlink(missing_ok=True)
        write_atomically(machine_dir / "exit-status", f"{code}\n")
        if code != REBOOT_EXIT_CODE or stopping:
            return code


def main(argv: list[str]) -> int:
    machine_dir, *rest = argv or [""]
    cgroup = None
    if rest[:1] == ["--cgroup"] and len(rest) > 1:
        cgroup, rest = rest[1], rest[2:]
    if len(rest) < 2 or rest[0] != "--":
        print(__doc__, file=sys.stderr)
        return 2
    code = supervise(Path(machine_dir), rest[1:], cgroup)
    return code if code >= 0 else 128 - code  # killed by a signal: the shell's convention


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
