"""`mlopsdeploy watch`: --status, the systemd unit and the cron line."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from mlopsdeploy.watchdog.cli import main
from mlopsdeploy.watchdog.guards import FileLock
from mlopsdeploy.watchdog.journal import Incident, Journal, Step


def test_status_summarises_the_journal(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    incident = Incident("vm1", "refused", 100.0, 98.0, "inactive/dead", recovered_at=106.0)
    incident.steps.append(Step(101.0, "restart", "stopped", "ok", 2.0))
    Journal(tmp_path / "incidents.jsonl").record("recovered", incident)
    assert main(["--status", "--state-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "vm1: 1 incidents (1 recovered, 0 open, 0 given up), 1 repairs" in out
    assert "restart (ok)" in out


def test_systemd_unit_runs_this_interpreter_with_the_given_settings(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "cfg"))
    monkeypatch.setenv("MLOPSDEPLOY_WEBHOOK_URL", "https://hooks.example/s3cr3t")
    argv = ["--print-systemd-unit", "--interval", "5", "--host", "vm1"]
    assert main(argv) == 0
    unit = capsys.readouterr().out
    assert f"ExecStart={sys.executable} -m mlopsdeploy.watchdog --host vm1 --interval 5.0" in unit
    assert "Restart=always" in unit
    assert f"EnvironmentFile=-{tmp_path}/cfg/mlopsdeploy/watchdog.env" in unit
    assert "s3cr3t" not in unit
    assert main(["--install-systemd-unit"]) == 0
    installed = tmp_path / "cfg/systemd/user/mlopsdeploy-watchdog.service"
    assert "ExecStart=" in installed.read_text()
    assert "enable --now mlopsdeploy-watchdog.service" in capsys.readouterr().out


def test_cron_line_starts_it_every_minute_and_logs_to_the_state_dir(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--print-cron", "--state-dir", str(tmp_path)]) == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith(f"* * * * * mkdir -p {tmp_path} && cd ")
    assert f"-m mlopsdeploy.watchdog --state-dir {tmp_path}" in line
    assert line.endswith(f">> {tmp_path}/watchdog.log 2>&1")


def test_second_watchdog_on_the_same_state_dir_exits_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "hosts.toml"
    config.write_text('[hosts.vm1]\naddress = "10.213.250.2"\nown_key = "/nonexistent"\n')
    monkeypatch.setenv("MLOPSDEPLOY_CONFIG", str(config))
    monkeypatch.delenv("MLOPSDEPLOY_HOST", raising=False)
    with FileLock(tmp_path / "state" / "watchdog.lock").hold() as held:
        assert held
        assert main(["--state-dir", str(tmp_path / "state")]) == 0


def test_no_configured_host_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("MLOPSDEPLOY_CONFIG", str(tmp_path / "missing.toml"))
    monkeypatch.delenv("MLOPSDEPLOY_HOST", raising=False)
    monkeypatch.setattr("mlopsdeploy.testbed.target.DEMO_VM", "wd-no-such-vm")
    assert main(["--state-dir", str(tmp_path)]) == 2
    assert "no hosts configured" in capsys.readouterr().err
