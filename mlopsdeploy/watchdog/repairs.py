"""The repairs themselves: restart the unit over SSH, or run the deploy for one host.

A restart is one systemctl command as the deploy user. Re-deploying and re-provisioning are the
deploy (the same code as ``pyinfra inventory.py deploys/main.py``), run in a child process: it
can be killed when it overruns, a crash in it cannot take the watchdog down, and the deploys of
two hosts never share pyinfra's global state. Its output goes to a log file per repair.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from mlopsdeploy.config import HostConfig
from mlopsdeploy.service import UNIT, systemctl
from mlopsdeploy.watchdog.ladder import Rung
from mlopsdeploy.watchdog.ssh_check import RemoteError, run_as_owner
from mlopsdeploy.watchdog.watcher import RepairResult


class HostRepairs:
    """Callable: Rung → RepairResult for one host."""

    def __init__(
        self,
        cfg: HostConfig,
        log_dir: Path,
        restart_timeout_s: float = 60.0,
        deploy_timeout_s: float = 900.0,
    ) -> None:
        self.cfg = cfg
        self.log_dir = log_dir
        self.restart_timeout_s = restart_timeout_s
        self.deploy_timeout_s = deploy_timeout_s

    def __call__(self, rung: Rung) -> RepairResult:
        if rung == Rung.RESTART:
            return self.restart()
        return self.deploy(accept_new_host_key=rung == Rung.REPROVISION)

    def restart(self) -> RepairResult:
        command = f"{systemctl(self.cfg.service_scope)} restart {UNIT}"
        try:
            run_as_owner(self.cfg, command, self.restart_timeout_s)
        except RemoteError as exc:
            return RepairResult(False, str(exc))
        return RepairResult(True, f"restarted {UNIT}")

    def deploy(self, accept_new_host_key: bool) -> RepairResult:
        argv = [sys.executable, "-m", "mlopsdeploy.watchdog.redeploy", self.cfg.name]
        if accept_new_host_key:
            argv.append("--accept-new-host-key")
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log_path = self.log_dir / f"{self.cfg.name}-{time.strftime('%Y%m%dT%H%M%S')}.log"
        timeout = self.deploy_timeout_s
        with log_path.open("w") as log:
            try:
                done = subprocess.run(
                    argv, stdout=subprocess.PIPE, stderr=log, text=True, timeout=timeout
                )
            except subprocess.TimeoutExpired:
                return RepairResult(False, f"deploy overran {timeout:.0f}s; log {log_path}")
        summary = done.stdout.strip().splitlines()[-1:] or ["no output"]
        return RepairResult(done.returncode == 0, f"{summary[0]} (log {log_path})")
