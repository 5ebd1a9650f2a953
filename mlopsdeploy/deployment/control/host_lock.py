"""The host lock: one deploy, rollback or watchdog repair at a time on a host, from anywhere.

It lives on the host (``flock`` on a file under the deploy root), so two control machines
exclude each other too. It is held by a process at the end of its own SSH channel on the run's
connection and goes away with that connection, whether the run finished, failed or was killed:
a dead deploy never leaves a lock that someone would have to break by hand.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager

from pyinfra.api import Host

from mlopsdeploy.config import HostConfig
from mlopsdeploy.deployment.host_commands import hold_host_lock
from mlopsdeploy.errors import DeployError

# How long a second deploy waits for the first before it refuses (a cold deploy takes ~2 min).
LOCK_WAIT_SECONDS = 300


def lock_owner() -> str:
    """Who takes the lock, as another deploy's refusal names it."""
    return f"mlopsdeploy on {socket.gethostname()} (pid {os.getpid()})"


@contextmanager
def hold_lock(
    target: Host, cfg: HostConfig, wait_seconds: int = LOCK_WAIT_SECONDS
) -> Iterator[None]:
    """Hold ``cfg``'s host lock over ``target``'s connection for the ``with`` block.

    A context manager, not a returned channel: paramiko keeps channels only by weak reference
    and closes one when it is collected, so a channel nobody holds on to gives the lock back at
    once (two deploys then both repaired the same release). Raises DeployError naming the
    holder and since when if the lock stays taken for ``wait_seconds``.
    """
    transport = target.connector.client.get_transport()  # type: ignore[attr-defined]
    channel = transport.open_session()
    channel.exec_command(
        hold_host_lock(cfg.base_dir, cfg.service_scope, lock_owner(), wait_seconds)
    )
    answer = channel.makefile("r").readline().strip()
    if answer == "locked":
        try:
            yield
        finally:
            channel.close()
        return
    channel.close()
    if not answer.startswith("busy"):
        raise DeployError(cfg.name, f"could not take the host lock under {cfg.base_dir}")
    holder = answer.removeprefix("busy").strip() or "another run"
    raise DeployError(
        cfg.name,
        f"another deploy holds the host lock: {holder}; waited {wait_seconds} s and changed "
        "nothing (the lock is released when that run ends or dies)",
    )
