"""systemd's service watchdog: a hung app is killed and restarted by systemd itself.

A process that is alive but answers nothing (SIGSTOP, a deadlocked event loop) looks healthy to
`Restart=always`. With `WatchdogSec=` in the unit, systemd expects `WATCHDOG=1` on
`$NOTIFY_SOCKET` at least that often and kills the service when it stops coming. The pings come
from a thread, but only while the event loop proves it still runs (a heartbeat it refreshes), so a
blocked loop stops them too. Without `$WATCHDOG_USEC` (no watchdog configured, e.g. when run by
hand) nothing here does anything.
"""

from __future__ import annotations

import asyncio
import os
import socket
import threading
import time
from collections.abc import Mapping


def notify(state: str, environ: Mapping[str, str] = os.environ) -> bool:
    """Send `state` (e.g. "WATCHDOG=1") to systemd; False when not run under a notify socket."""
    path = environ.get("NOTIFY_SOCKET")
    if not path:
        return False
    address = "\0" + path[1:] if path.startswith("@") else path
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.sendto(state.encode(), address)
    return True


class Watchdog:
    """Pings systemd from a thread while the event loop's heartbeat is fresh.

    Until the loop starts beating (model loading can take a while) the thread pings regardless:
    the process is demonstrably running its start-up code, and a SIGSTOP still silences it.
    """

    def __init__(self, interval: float, environ: Mapping[str, str] = os.environ) -> None:
        self.interval = interval
        self._environ = environ
        self._beat: float | None = None
        self._stop = threading.Event()

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] = os.environ) -> Watchdog | None:
        """The watchdog systemd asked for (ping at half its period), or None."""
        usec = environ.get("WATCHDOG_USEC")
        if not usec or not environ.get("NOTIFY_SOCKET"):
            return None
        return cls(int(usec) / 1_000_000 / 2, environ)

    def start(self) -> None:
        threading.Thread(target=self._run, name="systemd-watchdog", daemon=True).start()

    def stop(self) -> None:
        self._stop.set()

    def fresh(self) -> bool:
        """True while the loop has not started yet or beat within two ping periods."""
        return self._beat is None or time.monotonic() - self._beat < 2 * self.interval

    async def heartbeat(self) -> None:
        """Runs on the event loop for the app's lifetime: proof that the loop is not stuck."""
        while not self._stop.is_set():
            self._beat = time.monotonic()
            await asyncio.sleep(self.interval / 2)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            if self.fresh():
                notify("WATCHDOG=1", self._environ)
