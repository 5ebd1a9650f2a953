"""The UnitProcess fact: systemctl show + ps output → ServiceState."""

from __future__ import annotations

from mlopsdeploy.deployment.facts.service import ServiceStatus, UnitProcess


def test_running_service_with_its_process() -> None:
    state = UnitProcess().process(
        [
            "LoadState=loaded",
            "ActiveState=active",
            "SubState=running",
            "MainPID=812",
            "process Ssl 45",
        ]
    )
    assert (state.main_pid, state.process_state, state.process_age_s) == (812, "S", 45.0)
    assert not (state.restarting or state.down or state.missing or state.stopped_process)


def test_sigstopped_process_shows_state_t() -> None:
    state = UnitProcess().process(
        ["LoadState=loaded", "ActiveState=active", "SubState=running", "MainPID=9", "process Tl 3"]
    )
    assert state.stopped_process


def test_crashed_service_waiting_for_its_restart() -> None:
    state = UnitProcess().process(
        ["LoadState=loaded", "ActiveState=activating", "SubState=auto-restart", "MainPID=0"]
    )
    assert state.restarting and not state.down
    assert state.process_age_s is None


def test_stopped_and_missing_units() -> None:
    stopped = UnitProcess().process(["LoadState=loaded", "ActiveState=inactive", "SubState=dead"])
    assert stopped.down
    missing = UnitProcess().process(
        ["LoadState=not-found", "ActiveState=inactive", "SubState=dead"]
    )
    assert missing.missing


def test_unreachable_service_manager_is_reported_not_raised() -> None:
    state = UnitProcess().process(["ManagerDown=yes"])
    assert state.manager_down
    assert state.summary() == "service manager not running"


def test_command_asks_the_given_manager_and_quotes_the_unit() -> None:
    command = UnitProcess().command("my app.service", "user")
    assert "systemctl --user show 'my app.service' -p LoadState" in command
    assert 'XDG_RUNTIME_DIR="/run/user/$(id -u)" systemctl --user' in command
    assert "ps -o stat=,etimes=" in command


def test_unit_status_reaches_the_user_manager_without_a_login_session() -> None:
    """A non-interactive ssh session may lack XDG_RUNTIME_DIR: without it `systemctl --user`
    answers "inactive" for a running app, and the deploy would check the app's own port."""
    command = ServiceStatus().command("mlopsdeploy.service", "user")
    assert command.count('XDG_RUNTIME_DIR="/run/user/$(id -u)" systemctl --user is-') == 2
    assert "sudo -n systemctl is-active" in ServiceStatus().command("mlopsdeploy.service", "system")
