from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from mlopsdeploy.faults import ApiOutage, CommandFailed, TakePort
from mlopsdeploy.faults.base import poll_guest


class FakeSwitch:
    def __init__(self) -> None:
        self.modes: list[str] = []

    def set_mode(self, mode: str) -> None:
        self.modes.append(mode)


@pytest.mark.parametrize(
    ("mode", "kind"),
    [("down", "api_unreachable"), ("slow", "api_timeout"), ("unauthorized", "api_unauthorized")],
)
def test_api_outage_switches_the_stand_in_and_expects_the_apps_error(
    mode: str, kind: str, guest: Any, make_target: Any
) -> None:
    switch = FakeSwitch()
    target = make_target(guest, api=switch)
    fault = ApiOutage(mode)
    fault.inject(target)
    fault.undo(target)
    assert switch.modes == [mode, "ok"]
    assert fault.name == f"api-{mode}"
    assert fault.recovery.while_active is not None
    assert fault.recovery.while_active.api_error == kind
    assert not fault.recovery.redeploy


def test_port_holder_starts_kills_the_app_then_waits_for_the_port(
    guest: Any, make_target: Any
) -> None:
    target = make_target(guest)
    TakePort().inject(target)
    start, kill, wait = guest.commands
    assert "systemd-run --user" in start and "http.server" in start and start.endswith(" 8000")
    assert "kill -KILL" in kill
    assert "timeout 30 sh -c" in wait and "sport = :8000" in wait
    TakePort().undo(target)
    assert "stop mlopsdeploy-fault-port-holder" in guest.commands[-1]


def test_poll_guest_returns_once_the_condition_holds_and_times_out_otherwise(
    tmp_path: Path,
    app_process: subprocess.Popen[bytes],
    local_guest: Any,
) -> None:
    guest = local_guest(app_process.pid)
    flag = tmp_path / "flag"
    flag.touch()
    poll_guest(guest, f"test -e {flag}", 5)
    with pytest.raises(CommandFailed) as failed:
        poll_guest(guest, f"test -e {tmp_path / 'never'}", 0.3)
    assert failed.value.returncode == 124
