"""What `mlopsdeploy deploy` prints at the end: one line per host, whatever pyinfra logged."""

from __future__ import annotations

from pathlib import Path

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
