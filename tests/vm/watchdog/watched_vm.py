"""What the watchdog VM tests hand around: the watched host and a loopback webhook receiver.

Kept out of conftest.py so the test module can import the types for its annotations.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from mlopsdeploy.config import HostConfig
from mlopsdeploy.deployment.control.ssh_login import key_logs_in
from mlopsdeploy.faults import Target
from mlopsdeploy.resilience.probes import AppProbe
from mlopsdeploy.testbed.machine import TestVM


@dataclass
class WatchedHost:
    vm: TestVM
    cfg: HostConfig
    target: Target
    hosts_file: Path
    model_dir: Path

    def default_key_rejected(self) -> bool:
        """The lockout a (re)deploy must restore: the shared default key no longer logs in."""
        default = self.cfg.default_key
        return default is not None and not key_logs_in(self.cfg, default)

    def labels_correct(self) -> str | None:
        """None when readyz is 200 and the canaries and a dozen everyday sentences are right."""
        probe = AppProbe(self.cfg.url)
        try:
            return probe.correct().cause
        finally:
            probe.close()


class Receiver(ThreadingHTTPServer):
    """A webhook endpoint on loopback that keeps every JSON body it is sent."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _ReceiverHandler)
        self.bodies: list[dict] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_port}/hook/test-secret"

    def events(self, host: str) -> list[str]:
        return [b["event"] for b in self.bodies if b["host"] == host]


class _ReceiverHandler(BaseHTTPRequestHandler):
    server: Receiver

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.bodies.append(json.loads(body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        return None
