"""Host-side access to a running guest, independent of its network and sshd.

Some faults need the operator's console rather than SSH: restoring a home while the user's
sessions are killed, or rebooting a machine whose network is cut. `nsenter` into the namespaces
of the container's init gives exactly that console.
"""

from __future__ import annotations

import subprocess

from mlopsdeploy.testbed.processes import ProcessId

GUEST_ENV = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}


def guest_exec(
    init: ProcessId, argv: list[str], check: bool = True, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """Run `argv` as root inside the guest whose PID 1 is `init`."""
    if not init.alive():
        raise RuntimeError(f"guest init {init.pid} is not running")
    namespaces = ["--mount", "--uts", "--ipc", "--net", "--pid", "--cgroup", "--root", "--wd"]
    return subprocess.run(
        ["nsenter", f"--target={init.pid}", *namespaces, "--", *argv],
        env=GUEST_ENV,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=check,
    )
