"""What `mlopsdeploy deploy` prints at the end: one line per host, whatever pyinfra logged."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from mlopsdeploy import cli
from mlopsdeploy.cli import _report
from mlopsdeploy.deployment.results import DeployResult, HostResult, StepResult
from mlopsdeploy.errors import DeployError


def test_one_line_per_host_with_its_outcome(capsys: pytest.CaptureFixture[str]) -> None:
    changed = HostResult(
        host="team10",
        url="http://vm:8010",
        ok=True,
        release="r-1",
        steps=[StepResult(name="Runtime venv", changed=True, ok=True, seconds=40.0)],
        timings={"access": 2.0, "total": 61.25},
    )
    same = HostResult(host="team11", url="http://vm:8011", ok=True, release="r-1")
    refused = HostResult(
        host="team12",
        url="http://vm:8012",
        timings={"total": 9.0},
        error=DeployError("team12", "release r-2 refused by the health gate", ["boom"]),
    )
    code = _report(DeployResult([changed, same, refused]), as_json=False)
    assert code == 1
    printed = capsys.readouterr()
    assert printed.out.splitlines() == [
        "team10: OK  http://vm:8010  release r-1  1 steps changed  in 61.2s",
        "team11: OK  http://vm:8011  release r-1  no changes  in 0.0s",
        "team12: FAILED  http://vm:8012  after 9.0s: release r-2 refused by the health gate",
    ]
    assert printed.err.splitlines() == ["team12:", "  last journal lines:", "    boom"]


def test_a_bad_app_spec_is_refused_before_any_host_is_touched(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    app = tmp_path / "my-app"
    app.mkdir()
    (app / "requirements.txt").write_text("gradio\n")
    (app / "mlopsdeploy.toml").write_text('[install]\nrequirements = "requirements.txt"\n')
    touched: list[str] = []
    monkeypatch.setattr(cli, "load_hosts", lambda: touched.append("hosts") or [])
    monkeypatch.setattr(cli, "deploy", lambda *a, **k: touched.append("deploy"))

    assert cli.main(["deploy", "--app", str(app)]) == 2
    assert capsys.readouterr().err == (
        f"mlopsdeploy: {app}/mlopsdeploy.toml: start: give exactly one of start.app"
        " (e.g. 'app:demo') or start.command\n"
    )
    assert touched == []  # neither the hosts (nor the demo VM) nor a deploy


HOSTS_TOML = """
[defaults]
own_key = "/k"

[hosts.app1]
address = "10.0.0.11"

[hosts.app2]
address = "10.0.0.12"

[rollout]
batches = [1, "100%"]
max_fail = "50%"
"""


def rolled(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, *argv: str) -> list[Any]:
    """The hosts and options ``mlopsdeploy deploy`` hands to deploy() for a two-host file."""
    config = tmp_path / "hosts.toml"
    config.write_text(HOSTS_TOML)
    monkeypatch.setenv("MLOPSDEPLOY_CONFIG", str(config))
    calls: list[Any] = []

    def deploy(hosts: list[Any], options: Any, hooks: Any) -> DeployResult:
        calls.append(([h.name for h in hosts], options, hooks))
        return DeployResult([])

    monkeypatch.setattr(cli, "deploy", deploy)
    assert cli.main(["deploy", "--quiet", *argv]) == 0
    return calls


def test_batches_come_from_the_rollout_table_unless_given(monkeypatch, tmp_path) -> None:
    [(hosts, options, hooks)] = rolled(monkeypatch, tmp_path)
    assert hosts == ["app1", "app2"] and hooks is None  # no lb group: no load balancer
    assert (options.batches, options.max_fail, options.rollback_failed) == (
        (1, "100%"),
        "50%",
        False,
    )
    [(_, options, _)] = rolled(
        monkeypatch, tmp_path, "--batches", "2", "--max-fail", "0", "--rollback-failed"
    )
    assert (options.batches, options.max_fail, options.rollback_failed) == ((2,), 0, True)


def test_a_malformed_batch_is_refused_before_any_deploy(monkeypatch, tmp_path, capsys) -> None:
    config = tmp_path / "hosts.toml"
    config.write_text(HOSTS_TOML)
    monkeypatch.setenv("MLOPSDEPLOY_CONFIG", str(config))
    monkeypatch.setattr(cli, "deploy", lambda *a, **k: pytest.fail("deployed"))
    assert cli.main(["deploy", "--batches", "1,half"]) == 2
    assert "'half'" in capsys.readouterr().err


def test_a_stopped_rollout_says_why_and_what_to_retry(capsys) -> None:
    done = HostResult("app1", "http://a:8000", ok=True, release="r-2", batch=1)
    refused = HostResult(
        "app2", "http://b:8000", batch=2, error=DeployError("app2", "release r-2 refused")
    )
    waiting = HostResult("app3", "http://c:8000")
    stopped = "1 host(s) failed (app2), more than max_fail=0"
    assert _report(DeployResult([done, refused, waiting], stopped=stopped), as_json=False) == 1
    lines = capsys.readouterr().out.splitlines()
    assert lines[1:] == [
        "app2: FAILED  http://b:8000  after 0.0s: release r-2 refused",
        "app3: NOT STARTED  http://c:8000  keeps the release it serves",
        f"rollout stopped: {stopped}",
        "to retry: app2 app3",
    ]
