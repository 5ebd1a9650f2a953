"""An ``ssh -L`` over the deploy's own SSH connection, on the control machine.

A candidate release listens only on the host's loopback, so course VMs that expose just one app
port can be gated too: the probe reaches it through this forward.
"""

from __future__ import annotations

import logging
import select
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import paramiko


def _not_refused_channel(record: logging.LogRecord) -> bool:
    """Drops paramiko's error line for a forward refused while the candidate is still starting."""
    return "open FAILED" not in record.getMessage()


@contextmanager
def forwarded_port(transport: paramiko.Transport, remote_port: int) -> Iterator[int]:
    """Forward a local loopback port to ``127.0.0.1:remote_port`` on the host (``ssh -L``)."""
    paramiko_log = logging.getLogger("paramiko.transport")
    paramiko_log.addFilter(_not_refused_channel)
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.2)
    stop = threading.Event()

    def pump(conn: socket.socket) -> None:
        try:
            channel = transport.open_channel(
                "direct-tcpip", ("127.0.0.1", remote_port), conn.getpeername()
            )
        except (paramiko.SSHException, OSError):
            conn.close()
            return
        with conn, channel:
            while not stop.is_set():
                readable, _, _ = select.select([conn, channel], [], [], 0.2)  # type: ignore[type-var]
                if conn in readable:
                    data = conn.recv(65536)
                    if not data:
                        break
                    channel.sendall(data)
                if channel in readable:
                    data = channel.recv(65536)
                    if not data:
                        break
                    conn.sendall(data)

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=pump, args=(conn,), daemon=True).start()

    acceptor = threading.Thread(target=accept, daemon=True)
    acceptor.start()
    try:
        yield listener.getsockname()[1]
    finally:
        stop.set()
        listener.close()
        acceptor.join(timeout=2)
        paramiko_log.removeFilter(_not_refused_channel)
