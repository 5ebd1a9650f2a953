"""The health gate: probe a release from the control machine until it answers correctly.

HTTP 200 is not enough (the typical smoke test passed while the model was broken): a release is
healthy when ``/readyz`` says ready AND ``/api/sentiment`` gives the expected label for every
canary sentence. A candidate that only listens on the host's loopback is probed through an SSH
port forward, so course VMs that expose just one app port can be gated too.
"""

from __future__ import annotations

import logging
import select
import socket
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import httpx
import paramiko


@dataclass(frozen=True)
class Canary:
    """A sentence whose label any acceptable model must get right."""

    text: str
    label: str


# The app's own readiness sentences (issue 2); a model's manifest may add more.
DEFAULT_CANARIES = (
    Canary("I am so happy today!", "POSITIVE"),
    Canary("This is the worst day ever.", "NEGATIVE"),
)


@dataclass(frozen=True)
class ProbeResult:
    ok: bool
    cause: str
    seconds: float
    model_version: str | None = None


def check_once(client: httpx.Client, canaries: Iterable[Canary]) -> tuple[str | None, str | None]:
    """One probe round: (cause of failure or None, model version reported by /readyz)."""
    ready = client.get("/readyz")
    body = _json(ready)
    if ready.status_code != 200:
        return f"/readyz answered {ready.status_code}: {body.get('reason', ready.text[:200])}", None
    version = body.get("model_version")
    wanted = list(canaries)
    answer = client.post("/api/sentiment", json={"texts": [c.text for c in wanted]})
    if answer.status_code != 200:
        return f"/api/sentiment answered {answer.status_code}: {answer.text[:200]}", version
    results = _json(answer).get("results", [])
    if len(results) != len(wanted):
        return f"/api/sentiment returned {len(results)} results for {len(wanted)} texts", version
    for canary, result in zip(wanted, results, strict=True):
        if result.get("label") != canary.label:
            return (
                f"canary {canary.text!r} classified {result.get('label')}, expected {canary.label}",
                version,
            )
    return None, version


def _json(response: httpx.Response) -> dict:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def wait_healthy(
    base_url: str,
    canaries: Iterable[Canary] = DEFAULT_CANARIES,
    timeout: float = 90.0,
    interval: float = 0.5,
    transport: httpx.BaseTransport | None = None,
) -> ProbeResult:
    """Probe ``base_url`` until healthy or ``timeout`` passes; the last cause explains a failure.

    A model failing its canaries is final at once: waiting cannot fix wrong labels, and the
    user should learn that in seconds rather than after the timeout.
    """
    wanted = list(canaries)
    start = time.monotonic()
    cause = "no answer yet"
    with httpx.Client(base_url=base_url, timeout=10.0, transport=transport) as client:
        while True:
            try:
                failure, version = check_once(client, wanted)
            except httpx.HTTPError as e:
                failure, version = f"{type(e).__name__}: {e}", None
            elapsed = time.monotonic() - start
            if failure is None:
                return ProbeResult(True, "healthy", elapsed, version)
            cause = failure
            if failure.startswith("canary ") or elapsed >= timeout:
                return ProbeResult(False, cause, elapsed, version)
            time.sleep(min(interval, max(0.0, timeout - elapsed)))


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
