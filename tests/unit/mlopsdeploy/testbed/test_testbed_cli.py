"""The CLI and the public API are what docs/testbed.md says they are."""

from __future__ import annotations

from pathlib import Path

import pytest

import mlopsdeploy.testbed
from mlopsdeploy.testbed import requirements
from mlopsdeploy.testbed.cli import build_parser, main
from mlopsdeploy.testbed.pytest_plugin import skip_reason

DOCS = Path(__file__).resolve().parents[4] / "docs" / "testbed.md"
COMMANDS = ["build", "up", "down", "list", "ssh", "destroy", "wipe", "wipe-home", "reboot"]
COMMANDS += ["power-off", "power-on", "cut-network", "restore-network"]


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_parses_and_is_documented(command: str) -> None:
    argv = [command] if command in ("build", "list", "destroy") else [command, "vm1"]
    assert build_parser().parse_args(argv).command == command
    assert f"python -m mlopsdeploy.testbed {command}" in DOCS.read_text()


def test_public_names_are_documented() -> None:
    docs = DOCS.read_text()
    for name in mlopsdeploy.testbed.__all__:
        assert f"`{name}" in docs, name


def test_list_on_an_empty_state_dir_prints_only_the_header(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("MLOPSDEPLOY_TESTBED_DIR", str(tmp_path))
    assert main(["list"]) == 0
    assert capsys.readouterr().out.split() == ["NAME", "ADDRESS", "STATE", "OWNER", "IMAGE"]


def test_missing_requirements_name_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(requirements.os, "geteuid", lambda: 1000)
    monkeypatch.setattr(requirements.shutil, "which", lambda tool: None)
    monkeypatch.setattr(requirements.Path, "exists", lambda self: False)
    missing = requirements.missing_requirements()
    assert "root (running as uid 1000)" in missing
    assert "systemd-nspawn (apt-get install systemd-container)" in missing
    assert "mmdebstrap (apt-get install mmdebstrap)" in missing
    reason = skip_reason()
    assert reason is not None and "systemd-nspawn (apt-get install systemd-container)" in reason


def test_commands_refuse_to_run_without_requirements(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(requirements.os, "geteuid", lambda: 1000)
    assert main(["up", "vm1"]) == 1
    assert "root (running as uid 1000)" in capsys.readouterr().err
