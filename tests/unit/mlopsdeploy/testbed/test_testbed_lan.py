"""The LAN relay on loopback: bytes both ways, and a dead server refuses like a dead host."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest

from mlopsdeploy.testbed.lan import Relay


@pytest.fixture
def relay() -> Iterator[Relay]:
    r = Relay()
    yield r
    r.close()


def echo_server() -> tuple[socket.socket, int]:
    server = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        conn, _ = server.accept()
        with conn:
            while data := conn.recv(1024):
                conn.sendall(data.upper())

    threading.Thread(target=serve, daemon=True).start()
    return server, server.getsockname()[1]


def test_relay_carries_both_directions_until_the_client_closes(relay: Relay) -> None:
    server, port = echo_server()
    with server:
        listen = relay.add("127.0.0.1", ("127.0.0.1", port))
        with socket.create_connection(("127.0.0.1", listen), timeout=5) as client:
            client.sendall(b"hello")
            assert client.recv(1024) == b"HELLO"
            client.shutdown(socket.SHUT_WR)
            assert client.recv(1024) == b""


def test_relay_to_a_dead_server_closes_without_an_answer(relay: Relay) -> None:
    free = socket.create_server(("127.0.0.1", 0))
    dead_port = free.getsockname()[1]
    free.close()
    listen = relay.add("127.0.0.1", ("127.0.0.1", dead_port))
    with socket.create_connection(("127.0.0.1", listen), timeout=5) as client:
        client.sendall(b"GET / HTTP/1.0\r\n\r\n")
        try:
            answer = client.recv(1024)
        except ConnectionResetError:
            answer = b""  # reset rather than closed: no answer either way
    assert answer == b""
