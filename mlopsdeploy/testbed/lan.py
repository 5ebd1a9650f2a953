"""A LAN between test machines: one machine reaches chosen ports of others at their own addresses.

Machines are isolated on purpose (each reaches only the host's end of its link, and forwarding
is off), but a load balancer must reach its backends. Switching forwarding on would open every
machine to every other one; instead the host relays exactly the (machine, port) pairs asked for.
Inside the client machine's namespace, connections to ``server.address:port`` are DNATed to a
relay on the host's end of the client's link, and the relay connects on to the server. The
client sees the server at its real address and port, as on a LAN, and a server that is down
refuses: the relay closes the client's connection at once, without an answer.

The relay runs in a thread of the process that made the ``Lan``; ``close()`` removes the rules
and stops it (also when the machines are already gone).
"""

from __future__ import annotations

import asyncio
import subprocess
import threading
from types import TracebackType

from mlopsdeploy.testbed.machine import TestVM

TABLE = "mlopsdeploy-lan"
CONNECT_TIMEOUT_S = 5.0
_CHUNK = 65536


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(_CHUNK):
            writer.write(data)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()
    except OSError:
        writer.transport.abort()


class Relay:
    """TCP relay from listening sockets on this host to ``(address, port)`` targets."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()
        self._servers: list[asyncio.Server] = []

    def add(self, listen: str, target: tuple[str, int]) -> int:
        """Relay connections to ``listen`` (any free port) on to ``target``; returns the port."""

        async def relay(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                up_reader, up_writer = await asyncio.wait_for(
                    asyncio.open_connection(*target), CONNECT_TIMEOUT_S
                )
            except (OSError, TimeoutError):
                writer.transport.abort()  # refused, as the server itself would
                return
            try:
                await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
            except asyncio.CancelledError:  # the relay is closing: cut the connection
                up_writer.transport.abort()
                writer.transport.abort()
                return
            up_writer.close()
            writer.close()

        async def serve() -> int:
            server = await asyncio.start_server(relay, listen, 0)
            self._servers.append(server)
            return int(server.sockets[0].getsockname()[1])

        return asyncio.run_coroutine_threadsafe(serve(), self.loop).result()

    def close(self) -> None:
        async def stop() -> None:
            for server in self._servers:
                server.close()
            for task in asyncio.all_tasks() - {asyncio.current_task()}:
                task.cancel()

        if self._thread.is_alive():
            asyncio.run_coroutine_threadsafe(stop(), self.loop).result()
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(timeout=10)
        self.loop.close()


class Lan:
    """Lets ``client`` reach ports of other machines, e.g. a load balancer its backends.

    >>> with Lan(lb_vm) as lan:
    ...     lan.reach(app_vm, 8000)   # on lb_vm: curl http://<app_vm.address>:8000/ works
    """

    def __init__(self, client: TestVM) -> None:
        self.client = client
        self.relay = Relay()
        self._rules: list[str] = []
        self._routes: list[str] = []

    def reach(self, server: TestVM, port: int) -> None:
        """From now on, ``client`` reaches ``server.address:port`` (through the host's relay)."""
        relay_port = self.relay.add(self.client.host_address, (server.address, port))
        self._rules.append(
            f"ip daddr {server.address} tcp dport {port} "
            f"dnat to {self.client.host_address}:{relay_port}"
        )
        if server.address not in self._routes:
            # Without a route the guest fails the connection before the nat hook ever sees it.
            self._ip("route", "replace", f"{server.address}/32", "via", self.client.host_address)
            self._routes.append(server.address)
        rules = "\n        ".join(self._rules)
        self._nft(
            f"table ip {TABLE}\ndelete table ip {TABLE}\n"
            f"table ip {TABLE} {{\n    chain output {{\n"
            f"        type nat hook output priority -100;\n        {rules}\n    }}\n}}\n"
        )

    def close(self) -> None:
        """Remove the rules and routes (if the client still exists) and stop the relay."""
        if self.client.link.netns_path.exists():
            self._nft(f"table ip {TABLE}\ndelete table ip {TABLE}\n", check=False)
            for address in self._routes:
                self._ip("route", "del", f"{address}/32", check=False)
        self._routes.clear()
        self._rules.clear()
        self.relay.close()

    def __enter__(self) -> Lan:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def _ip(self, *args: str, check: bool = True) -> None:
        _run(["ip", "-n", self.client.netns, *args], None, check)

    def _nft(self, script: str, check: bool = True) -> None:
        _run(["ip", "netns", "exec", self.client.netns, "nft", "-f", "-"], script, check)


def _run(argv: list[str], stdin: str | None, check: bool) -> None:
    result = subprocess.run(argv, input=stdin, capture_output=True, text=True, check=False)
    if check and result.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed: {result.stderr.strip()}")
