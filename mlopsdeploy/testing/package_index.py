"""A real package index on the control machine: pypiserver serving a directory of wheels.

Online installs (``install = "online"``) are what students' VMs use, but test VMs reach no
index. This serves the lock's wheels on the host end of a VM's link, so the online code path
runs for real against a PEP 503 index, and its request log proves what the VM fetched.
"""

from __future__ import annotations

import re
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType

import httpx

_REQUEST = re.compile(r'"GET (\S+) HTTP/[\d.]+" (\d{3})')


class PackageIndex:
    """``with PackageIndex(wheels, host, log) as index:`` serves ``wheels`` at ``index.url``.

    No fallback to PyPI (a missing wheel is a 404, not a redirect the VM cannot follow) and no
    uploads.
    """

    def __init__(self, wheels: Path, host: str, log: Path) -> None:
        self.wheels = wheels
        self.host = host
        self.log = log
        self.port = _free_port(host)
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The simple index, for ``index_url``."""
        return f"http://{self.host}:{self.port}/simple/"

    def __enter__(self) -> PackageIndex:
        argv = [sys.executable, "-m", "pypiserver", "run", "-v", "--log-file", str(self.log)]
        argv += ["-i", self.host, "-p", str(self.port), "--disable-fallback"]
        argv += ["-a", ".", "-P", ".", str(self.wheels)]
        self._process = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        self._wait_ready(timeout=30)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._process is not None:
            self._process.terminate()
            self._process.wait(timeout=10)
            self._process = None

    def requests(self) -> list[tuple[str, int]]:
        """(path, status) of every request served so far, in order."""
        text = self.log.read_text() if self.log.exists() else ""
        return [(m[1], int(m[2])) for m in _REQUEST.finditer(text)]

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        assert self._process is not None
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                stderr = self._process.stderr.read().decode() if self._process.stderr else ""
                raise RuntimeError(f"pypiserver exited at once: {stderr[-2000:]}")
            try:
                if httpx.get(f"http://{self.host}:{self.port}/health", timeout=1).is_success:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise TimeoutError(f"pypiserver did not answer on {self.host}:{self.port}")


def _free_port(host: str) -> int:
    with socket.socket() as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])
