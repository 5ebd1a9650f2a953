"""Redeploy repairs run the deploy as a child process: its verdict, its log, and its end."""

from __future__ import annotations

import sys
import threading
import time
from dataclasses import replace
from pathlib import Path

import pytest

from mlopsdeploy.config import HostConfig
from mlopsdeploy.watchdog import repairs as repairs_module
from mlopsdeploy.watchdog.ladder import Rung
from mlopsdeploy.watchdog.repairs import HostRepairs

CFG = HostConfig(name="vm1", address="10.213.250.2", own_key=Path("/nonexistent"))
REPORT = "import sys; print('deploy args', sys.argv[1:]); sys.exit({code})"


def repairs(tmp_path: Path, code: str, stop: threading.Event | None = None) -> HostRepairs:
    return HostRepairs(
        CFG,
        tmp_path / "logs",
        stop or threading.Event(),
        deploy_timeout_s=60,
        deploy_command=[sys.executable, "-c", code],
    )


def test_redeploy_and_reprovision_report_the_child_verdict(tmp_path: Path) -> None:
    ok = repairs(tmp_path, REPORT.format(code=0))(Rung.REDEPLOY)
    assert ok.ok
    assert ok.detail.startswith("deploy args ['vm1'] (log ")
    failed = repairs(tmp_path, REPORT.format(code=1))(Rung.REPROVISION)
    assert not failed.ok
    assert failed.detail.startswith("deploy args ['vm1', '--unconfirmed-host-key']")


def test_a_notice_of_the_deploy_reaches_the_repair_result(tmp_path: Path) -> None:
    code = "print('notice: secrets withheld: run mlopsdeploy trust vm1'); print('deployed r-1')"
    result = repairs(tmp_path, code)(Rung.REPROVISION)
    assert result.ok
    assert result.detail.startswith("deployed r-1 (log ")
    assert result.notice == "secrets withheld: run mlopsdeploy trust vm1"


def test_stopping_the_watchdog_ends_a_running_deploy(tmp_path: Path) -> None:
    stop = threading.Event()
    pid_file = tmp_path / "pid"
    code = f"import os, time; open({str(pid_file)!r}, 'w').write(str(os.getpid())); time.sleep(120)"
    results = []
    worker = threading.Thread(
        target=lambda: results.append(repairs(tmp_path, code, stop)(Rung.REDEPLOY))
    )
    worker.start()
    deadline = time.monotonic() + 30
    while not pid_file.exists() or not pid_file.read_text():
        assert time.monotonic() < deadline, "the deploy child never started"
        time.sleep(0.05)
    stop.set()
    worker.join(timeout=30)
    assert not worker.is_alive()
    assert not results[0].ok
    assert "interrupted" in results[0].detail
    assert not Path(f"/proc/{pid_file.read_text()}").exists()


def test_the_restart_of_an_own_app_restarts_its_single_unit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    example = Path(__file__).resolve().parents[4] / "examples" / "gradio-app"
    sent: list[str] = []
    monkeypatch.setattr(repairs_module, "run_as_owner", lambda cfg, cmd, timeout: sent.append(cmd))
    own = HostRepairs(replace(CFG, app_dir=example), tmp_path / "logs", threading.Event())
    result = own(Rung.RESTART)
    assert result.ok and result.detail == "restarted mlopsdeploy.service in turn"
    assert "restart mlopsdeploy.service" in sent[0] and "mlopsdeploy@" not in sent[0]
