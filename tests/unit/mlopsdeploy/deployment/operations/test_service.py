from __future__ import annotations

import hashlib
import io
from pathlib import Path

import pytest
from pyinfra.api import FileUploadCommand
from pyinfra.api.operation import OperationMeta
from pyinfra.connectors.util import CommandOutput

from mlopsdeploy.config import HostConfig
from mlopsdeploy.deployment.control.appspec_load import load_app_spec
from mlopsdeploy.deployment.facts.service import FileDigest, ServiceStatus, UnitStatus
from mlopsdeploy.deployment.operations.service import (
    EnvValues,
    env_file,
    render_env,
    render_unit,
    service_running,
    unit_file,
)

TOKEN = "hf_unit_test_secret"
REPO_ROOT = Path(__file__).resolve().parents[5]


@pytest.fixture
def cfg() -> HostConfig:
    return HostConfig(
        name="vm",
        address="a",
        own_key=Path("/k"),
        app_port=8010,
        api_model="http://10.213.1.1:9000",
    )


def directives(unit: str) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for line in unit.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            found.setdefault(key, []).append(value)
    return found


def test_main_unit_restarts_forever_and_reads_the_token_file(cfg) -> None:
    d = directives(render_unit(cfg))
    assert d["Restart"] == ["always"]
    assert float(d["RestartSec"][0]) >= 1
    assert d["StartLimitIntervalSec"] == ["0"]
    assert d["EnvironmentFile"] == ["/home/student-admin/mlopsdeploy/app.env"]
    assert '"APP_PORT=8010"' in d["Environment"]
    assert '"APP_MODEL=/home/student-admin/mlopsdeploy/current/model"' in d["Environment"]
    assert '"APP_API_MODEL=http://10.213.1.1:9000"' in d["Environment"]
    assert d["ExecStart"] == ["/home/student-admin/mlopsdeploy/venv/bin/python -m app"]
    assert d["NoNewPrivileges"] == ["yes"]
    assert d["WantedBy"] == ["default.target"]
    # A hung app is killed by systemd's watchdog (the app pings it, see app/systemd.py).
    assert d["WatchdogSec"] == ["20"]
    assert d["WatchdogSignal"] == ["SIGKILL"]
    assert d["NotifyAccess"] == ["main"]


def test_candidate_unit_is_loopback_only_and_never_restarted(cfg) -> None:
    d = directives(render_unit(cfg, "candidate"))
    assert '"APP_HOST=127.0.0.1"' in d["Environment"]
    assert '"APP_PORT=8011"' in d["Environment"]
    assert '"APP_MODEL=/home/student-admin/mlopsdeploy/candidate/model"' in d["Environment"]
    assert d["Restart"] == ["no"]
    assert "WantedBy" not in d
    assert "WatchdogSec" not in d


def test_system_unit_runs_as_the_user_with_a_read_only_os() -> None:
    cfg = HostConfig(name="vm", address="a", own_key=Path("/k"), service_scope="system")
    d = directives(render_unit(cfg))
    assert d["User"] == ["student-admin"]
    assert d["ProtectSystem"] == ["strict"]
    assert d["ReadWritePaths"] == ["/opt/mlopsdeploy"]
    assert d["WantedBy"] == ["multi-user.target"]


def digest(content: str, mode: str) -> str:
    return f"{hashlib.sha256(content.encode()).hexdigest()} {mode}"


def test_unit_file_unchanged_is_no_change(run_op, cfg) -> None:
    facts = {FileDigest: digest(render_unit(cfg), "644")}
    assert run_op(unit_file, facts, cfg=cfg) == []


def test_changed_unit_is_uploaded_and_systemd_reloaded(run_op, cfg) -> None:
    commands = run_op(unit_file, {FileDigest: "0" * 64 + " 644"}, cfg=cfg)
    upload = next(c for c in commands if isinstance(c, FileUploadCommand))
    assert upload.dest == "/home/student-admin/.config/systemd/user/mlopsdeploy.service"
    assert commands[-1].endswith("systemctl --user daemon-reload")


def test_token_file_is_created_0600_before_the_secret_is_written(run_op, cfg) -> None:
    commands = run_op(env_file, {FileDigest: None}, cfg=cfg, values=EnvValues(TOKEN))
    assert commands[0] == "install -m 600 /dev/null /home/student-admin/mlopsdeploy/app.env"
    upload = commands[1]
    assert isinstance(upload, FileUploadCommand)
    assert isinstance(upload.src, io.StringIO)
    assert upload.src.getvalue() == f"HF_TOKEN={TOKEN}\n"
    assert all(TOKEN not in c for c in commands if isinstance(c, str))


def test_token_file_with_wrong_mode_is_rewritten(run_op, cfg) -> None:
    values = EnvValues(TOKEN)
    assert (
        run_op(env_file, {FileDigest: digest(render_env(TOKEN), "600")}, cfg=cfg, values=values)
        == []
    )
    assert run_op(env_file, {FileDigest: digest(render_env(TOKEN), "644")}, cfg=cfg, values=values)


def test_secrets_never_show_in_the_arguments_pyinfra_logs() -> None:
    # pyinfra prints each operation's arguments with str() (CLI log, ``--json`` output).
    values = EnvValues(TOKEN, secrets=(("API_KEY", "sk-secret"),), awaiting_trust=None)
    assert TOKEN not in str(values) and "sk-secret" not in str(values)


@pytest.mark.parametrize(
    ("status", "restart", "expected"),
    [
        (UnitStatus(active=True, enabled=True, linger=True), False, []),
        (UnitStatus(active=True, enabled=True, linger=True), True, ["restart"]),
        (UnitStatus(active=False, enabled=True, linger=True), False, ["restart"]),
        (UnitStatus(active=False, enabled=False, linger=True), False, ["enable", "restart"]),
    ],
)
def test_service_restarts_only_when_needed(run_op, cfg, status, restart, expected) -> None:
    commands = run_op(service_running, {ServiceStatus: status}, cfg=cfg, restart=restart)
    assert [c.split()[-2] for c in commands] == expected


def finished(changed: bool) -> OperationMeta:
    meta = OperationMeta("hash", is_change=None)
    meta.set_complete(True, ["cmd"] if changed else [], CommandOutput([]))
    return meta


def test_service_restarts_when_an_input_operation_changed(run_op, cfg) -> None:
    status = UnitStatus(active=True, enabled=True, linger=True)
    unchanged = (finished(False), finished(False))
    assert run_op(service_running, {ServiceStatus: status}, cfg=cfg, after=unchanged) == []
    changed = (finished(False), finished(True))
    (command,) = run_op(service_running, {ServiceStatus: status}, cfg=cfg, after=changed)
    assert command.endswith("restart mlopsdeploy.service")


def test_an_app_spec_unit_runs_its_start_with_its_environment_and_no_watchdog(cfg) -> None:
    spec = load_app_spec(REPO_ROOT / "examples" / "gradio-app")
    d = directives(render_unit(cfg, spec=spec))
    base = "/home/student-admin/mlopsdeploy"
    launcher = f"{base}/current/app/_mlopsdeploy_launch.py"
    assert d["ExecStart"] == [f"{base}/venv/bin/python {launcher} app:demo 0.0.0.0 8010"]
    assert f'"MODEL_DIR={base}/current/model"' in d["Environment"]
    assert '"API_MODEL=http://10.213.1.1:9000"' in d["Environment"]
    assert '"GRADIO_SERVER_PORT=8010"' in d["Environment"]
    assert not any(value.startswith('"APP_') for value in d["Environment"])
    assert d["Restart"] == ["always"]
    # The app does not ping systemd's watchdog: WatchdogSec would kill it every 20 s.
    assert "WatchdogSec" not in d
    candidate = directives(render_unit(cfg, "candidate", spec))
    assert candidate["ExecStart"][0].endswith("app:demo 127.0.0.1 8011")
