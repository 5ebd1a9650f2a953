"""The repairs themselves: restart the unit over SSH, or run the deploy for one host.

A restart is one systemctl command as the deploy user. Re-deploying and re-provisioning are the
deploy (the same code as ``pyinfra inventory.py deploys/main.py``), run in a child process: it
can be killed when it overruns, a crash in it cannot take the watchdog down, and the deploys of
two hosts never share pyinfra's global state. Its output goes to a log file per repair.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from mlopsdeploy.config import HostConfig
from mlopsdeploy.deployment.host_commands import systemctl, under_host_lock
from mlopsdeploy.deployment.operations.workers import serving_units
from mlopsdeploy.watchdog.ladder import Rung
from mlopsdeploy.watchdog.probe import app_spec_for
from mlopsdeploy.watchdog.ssh_check import RemoteError, run_as_owner
from mlopsdeploy.watchdog.watcher import RepairResult

DEPLOY_COMMAND = (sys.executable, "-m", "mlopsdeploy.watchdog.redeploy")
"""Run with the host's name (and --unconfirmed-host-key): see mlopsdeploy.watchdog.redeploy."""
NOTICE = "notice: "
"""Summary lines the child starts with this are for a person (e.g. the secrets were withheld)."""
_POLL_S = 1.0
_TERMINATE_S = 10.0


class HostRepairs:
    """Callable: Rung → RepairResult for one host. A running deploy is ended when `stop` is
    set, so stopping the watchdog never leaves a deploy running on its own."""

    def __init__(
        self,
        cfg: HostConfig,
        log_dir: Path,
        stop: threading.Event,
        restart_timeout_s: float = 60.0,
        deploy_timeout_s: float = 900.0,
        deploy_command: Sequence[str] = DEPLOY_COMMAND,
    ) -> None:
        self.cfg = cfg
        self.log_dir = log_dir
        self.stop = stop
        self.restart_timeout_s = restart_timeout_s
        self.deploy_timeout_s = deploy_timeout_s
        self.deploy_command = list(deploy_command)

    def __call__(self, rung: Rung) -> RepairResult:
        if rung == Rung.RESTART:
            return self.restart()
        return self.deploy(new_host_key=rung == Rung.REPROVISION)

    def restart(self) -> RepairResult:
        # One worker after the other (each returns at READY=1): the others serve meanwhile.
        ctl = systemctl(self.cfg.service_scope)
        units = serving_units(self.cfg, app_spec_for(self.cfg))
        restart = " && ".join(f"{ctl} restart {unit}" for unit in units)
        # Under the host lock: never in the middle of a deploy (which restarts it anyway).
        command = under_host_lock(self.cfg.base_dir, restart, int(self.restart_timeout_s / 2))
        try:
            run_as_owner(self.cfg, command, self.restart_timeout_s)
        except RemoteError as exc:
            return RepairResult(False, str(exc))
        return RepairResult(True, f"restarted {', '.join(units)} in turn")

    def deploy(self, new_host_key: bool) -> RepairResult:
        """Run the deploy; with ``new_host_key`` the changed key is accepted as *unconfirmed*:
        nobody vouched for it, so the host gets no secrets until a person runs ``trust``."""
        argv = [*self.deploy_command, self.cfg.name]
        if new_host_key:
            argv.append("--unconfirmed-host-key")
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log = self.log_dir / f"{self.cfg.name}-{time.strftime('%Y%m%dT%H%M%S')}.log"
        summary = log.with_suffix(".summary")
        with log.open("wb") as err, summary.open("wb") as out:
            child = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err)
            stopped = self._wait(child)
        if stopped:
            return RepairResult(False, f"deploy {stopped}; log {log}")
        lines = summary.read_text(errors="replace").strip().splitlines() or ["no output"]
        notices = [line.removeprefix(NOTICE) for line in lines if line.startswith(NOTICE)]
        verdict = [line for line in lines if not line.startswith(NOTICE)] or ["no output"]
        return RepairResult(
            child.returncode == 0, f"{verdict[-1]} (log {log})", notice="; ".join(notices)
        )

    def _wait(self, child: subprocess.Popen[bytes]) -> str | None:
        """Wait for the deploy; stop it (by its pid) if it overruns or the watchdog stops."""
        deadline = time.monotonic() + self.deploy_timeout_s
        while True:
            try:
                child.wait(timeout=_POLL_S)
                return None
            except subprocess.TimeoutExpired:
                pass
            if self.stop.is_set() or time.monotonic() > deadline:
                child.terminate()
                try:
                    child.wait(timeout=_TERMINATE_S)
                except subprocess.TimeoutExpired:
                    child.kill()
                    child.wait()
                if self.stop.is_set():
                    return "interrupted: the watchdog is stopping"
                return f"overran {self.deploy_timeout_s:.0f}s"
