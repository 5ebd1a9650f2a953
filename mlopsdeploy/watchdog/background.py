"""A watchdog process in the background, and waiting on its journal: for tests and benchmarks.

It runs exactly what a user runs (`python -m mlopsdeploy.watchdog`), as a child process that
this object alone owns and stops by its pid. Waiting is on real conditions with deadlines -
a line in its log, an incident in its journal - never on sleeps standing in for them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType

from mlopsdeploy.config import HostConfig
from mlopsdeploy.watchdog.journal import Incident, Journal

POLL_S = 0.2


def write_hosts_file(path: Path, hosts: Sequence[HostConfig]) -> Path:
    """A hosts.toml describing `hosts`, for a watchdog pointed at it by MLOPSDEPLOY_CONFIG."""
    lines = []
    for cfg in hosts:
        lines += [
            f"[hosts.{json.dumps(cfg.name)}]",
            f"address = {json.dumps(cfg.address)}",
            f"ssh_port = {cfg.ssh_port}",
            f"user = {json.dumps(cfg.user)}",
            f"own_key = {json.dumps(str(cfg.own_key))}",
            f"known_hosts = {json.dumps(str(cfg.known_hosts))}",
            f"app_port = {cfg.app_port}",
        ]
        if cfg.listen_port is not None:
            lines.append(f"listen_port = {cfg.listen_port}")
        if cfg.default_key is not None:
            lines.append(f"default_key = {json.dumps(str(cfg.default_key))}")
    path.write_text("\n".join(lines) + "\n")
    return path


class BackgroundWatchdog:
    """`with BackgroundWatchdog(state_dir, ["--interval", "1"], env) as watchdog: ...`"""

    def __init__(
        self, state_dir: Path, options: Sequence[str] = (), env: Mapping[str, str] | None = None
    ) -> None:
        self.state_dir = state_dir
        self.options = list(options)
        self.env = {**os.environ, **(env or {})}
        self.log_path = state_dir / "watchdog.log"
        self.journal = Journal(state_dir / "incidents.jsonl")
        self._process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> BackgroundWatchdog:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        argv = [sys.executable, "-m", "mlopsdeploy.watchdog", "--state-dir", str(self.state_dir)]
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(
                [*argv, *self.options],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.env,
            )
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.stop()

    def stop(self, timeout_s: float = 30.0) -> int | None:
        """SIGTERM, then SIGKILL if it has not exited within `timeout_s`; its exit code."""
        process = self._process
        if process is None:
            return None
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        return process.returncode

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def wait_log(self, text: str, timeout_s: float) -> None:
        """Until `text` appears in the watchdog's log; fails early if the watchdog died."""
        self._wait(lambda: text in self.log(), f"{text!r} in the watchdog log", timeout_s)

    def wait_incident(
        self, since: float, done: Callable[[Incident], bool], timeout_s: float
    ) -> Incident:
        """The first incident detected at or after `since` for which `done` holds."""
        found: list[Incident] = []

        def check() -> bool:
            found[:] = [i for i in self.journal.incidents() if i.detected_at >= since and done(i)]
            return bool(found)

        self._wait(check, "the incident", timeout_s)
        return found[0]

    def _wait(self, condition: Callable[[], bool], what: str, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while not condition():
            process = self._process
            if process is not None and process.poll() is not None:
                raise RuntimeError(f"watchdog exited {process.returncode}:\n{self.log()[-3000:]}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"no {what} within {timeout_s:.0f}s:\n{self.log()[-3000:]}")
            time.sleep(POLL_S)
