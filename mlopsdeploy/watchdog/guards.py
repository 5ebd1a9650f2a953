"""Guards that keep the watchdog from making things worse than the fault did.

recover.sh's cron job could start a second redeploy while the first still ran, and a host that
stayed broken got redeployed every ten minutes forever. Three guards prevent that here: a lock
per host that other processes see too (a second watchdog, a cron run), an exponential backoff
after each repair that did not help, and a hard limit of repairs per hour.
"""

from __future__ import annotations

import fcntl
import os
import re
from collections import deque
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

HOUR_S = 3600.0


def backoff_delay(base_s: float, attempt: int, cap_s: float) -> float:
    """Delay before retry number `attempt` (1-based): base, 2 base, 4 base, ... at most cap."""
    return float(min(cap_s, base_s * 2 ** max(0, attempt - 1)))


class ActionBudget:
    """At most `limit` repairs in any sliding hour; seeded from the journal on start so a
    restarted watchdog does not get a fresh allowance."""

    def __init__(self, limit: int, past: Iterable[float] = (), window_s: float = HOUR_S) -> None:
        self.limit = limit
        self.window_s = window_s
        self._times: deque[float] = deque(sorted(past))

    def _expire(self, now: float) -> None:
        while self._times and self._times[0] <= now - self.window_s:
            self._times.popleft()

    def used(self, now: float) -> int:
        self._expire(now)
        return len(self._times)

    def left(self, now: float) -> int:
        return max(0, self.limit - self.used(now))

    def record(self, now: float) -> None:
        self._times.append(now)


def host_lock(lock_dir: Path, host: str) -> FileLock:
    """The lock held by whoever is repairing `host`, in this process or any other."""
    return FileLock(lock_dir / (re.sub(r"[^A-Za-z0-9_.-]", "_", host) + ".lock"))


class FileLock:
    """An flock(2) on a file, visible to every process on the control machine.

    flock locks die with their process, so a crashed watchdog never leaves a stale lock behind
    (recover.sh's lock file had to be deleted by hand after a crash).
    """

    def __init__(self, path: Path) -> None:
        self.path = path

    @contextmanager
    def hold(self) -> Iterator[bool]:
        """Try to take the lock without waiting; yields whether it was taken."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                yield False
                return
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())
            try:
                yield True
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)
