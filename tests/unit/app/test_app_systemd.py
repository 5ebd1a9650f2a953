"""The systemd watchdog pings: sent on a real notify socket, and only while the loop is alive."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from app.systemd import Watchdog, listen_sockets, notify


@pytest.fixture
def notify_socket(tmp_path: Path) -> Iterator[socket.socket]:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(tmp_path / "notify"))
    sock.settimeout(5)
    yield sock
    sock.close()


def environ(sock: socket.socket, watchdog_usec: int = 200_000) -> dict[str, str]:
    return {"NOTIFY_SOCKET": sock.getsockname(), "WATCHDOG_USEC": str(watchdog_usec)}


def test_notify_sends_the_state(notify_socket: socket.socket) -> None:
    assert notify("READY=1", environ(notify_socket))
    assert notify_socket.recv(64) == b"READY=1"


def test_no_socket_means_no_watchdog() -> None:
    assert not notify("WATCHDOG=1", {})
    assert Watchdog.from_environment({"WATCHDOG_USEC": "1000000"}) is None


def test_pings_at_half_the_period_during_start_up(notify_socket: socket.socket) -> None:
    watchdog = Watchdog.from_environment(environ(notify_socket))
    assert watchdog is not None
    assert watchdog.interval == pytest.approx(0.1)
    watchdog.start()
    try:
        assert notify_socket.recv(64) == b"WATCHDOG=1"
        assert notify_socket.recv(64) == b"WATCHDOG=1"
    finally:
        watchdog.stop()


def test_a_stuck_event_loop_stops_the_pings(notify_socket: socket.socket) -> None:
    watchdog = Watchdog.from_environment(environ(notify_socket))
    assert watchdog is not None

    async def beat_then_block() -> None:
        task = asyncio.create_task(watchdog.heartbeat())
        await asyncio.sleep(0.3)
        assert watchdog.fresh()
        task.cancel()

    asyncio.run(beat_then_block())
    watchdog.start()
    try:
        notify_socket.settimeout(1.0)
        with pytest.raises(TimeoutError):
            while True:  # drain pings sent while the last beat was still fresh
                notify_socket.recv(64)
        assert not watchdog.fresh()
    finally:
        watchdog.stop()


def test_sockets_for_another_process_are_not_taken() -> None:
    environ = {"LISTEN_FDS": "1", "LISTEN_PID": "1", "LISTEN_FDNAMES": "app"}
    assert listen_sockets(environ) == []
    assert environ == {}  # no child may believe they are its own either
