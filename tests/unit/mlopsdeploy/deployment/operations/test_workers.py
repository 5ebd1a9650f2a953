"""The worker layout's units and the decisions of its operation, without a host."""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path
from typing import Any

import pytest
from pyinfra.api import FunctionCommand

from mlopsdeploy.config import ConfigError, HostConfig
from mlopsdeploy.deployment.facts.service import FileDigest, WorkerLayout, WorkerUnits
from mlopsdeploy.deployment.operations.workers import (
    Rollout,
    _start_together,
    accepts,
    render_socket,
    render_target,
    render_worker,
    restart_in_turn,
    start_script,
    start_together,
    unit_files,
    workers_running,
)


@pytest.fixture
def cfg() -> HostConfig:
    return HostConfig(name="vm", address="a", own_key=Path("/k"), app_port=8010, workers=2)


def directives(unit: str) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for line in unit.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            found.setdefault(key, []).append(value)
    return found


def test_socket_owns_the_port_and_starts_worker_one_on_traffic(cfg: HostConfig) -> None:
    d = directives(render_socket(cfg))
    assert d["ListenStream"] == ["0.0.0.0:8010"]
    assert d["Service"] == ["mlopsdeploy@1.service"]


def test_workers_inherit_the_socket_and_say_when_ready(cfg: HostConfig) -> None:
    d = directives(render_worker(cfg))
    assert d["Type"] == ["notify"]
    assert d["Sockets"] == ["mlopsdeploy.socket"]
    assert d["NonBlocking"] == ["yes"]  # the shared socket's flag: blocking would freeze the others
    assert d["PartOf"] == ["mlopsdeploy.target"]
    assert d["Wants"] == ["mlopsdeploy.target"]  # a worker the socket starts brings back the app
    assert d["Restart"] == ["always"]
    # A client kept alive on a hung worker waits for this kill: half the single unit's 20 s.
    assert d["WatchdogSec"] == ["10"] and d["WatchdogSignal"] == ["SIGKILL"]
    assert d["TimeoutStopSec"] == ["20"]  # bounds a stopping worker's answers to what it accepted
    assert not any(e.startswith('"APP_PORT') for e in d["Environment"])


def test_target_wants_the_socket_and_each_worker(cfg: HostConfig) -> None:
    d = directives(render_target(cfg))
    assert d["Wants"] == ["mlopsdeploy.socket mlopsdeploy@1.service mlopsdeploy@2.service"]
    assert d["WantedBy"] == ["default.target"]


def test_zero_workers_is_refused() -> None:
    with pytest.raises(ConfigError, match="workers must be >= 1"):
        HostConfig(name="vm", address="a", own_key=Path("/k"), workers=0)


def layout(**changes: Any) -> WorkerLayout:
    values: dict[str, Any] = {
        "socket_active": True,
        "enabled": True,
        "target_active": True,
        "workers": {"1": "active", "2": "active"},
        "legacy": False,
    }
    return WorkerLayout(**{**values, **changes})


def test_healthy_workers_are_left_alone(run_op, cfg: HostConfig) -> None:
    assert run_op(workers_running, {WorkerUnits: layout()}, cfg=cfg, rollout=Rollout()) == []


def test_a_new_release_restarts_every_worker_in_turn(run_op, cfg: HostConfig) -> None:
    (roll,) = run_op(
        workers_running, {WorkerUnits: layout()}, cfg=cfg, rollout=Rollout(), restart=True
    )
    assert isinstance(roll, FunctionCommand)
    assert roll.args[1] == ["mlopsdeploy@1.service", "mlopsdeploy@2.service"]


def test_only_the_worker_that_is_down_is_started(run_op, cfg: HostConfig) -> None:
    down = layout(workers={"1": "active", "2": "failed"})
    (roll,) = run_op(workers_running, {WorkerUnits: down}, cfg=cfg, rollout=Rollout())
    assert roll.args[1] == ["mlopsdeploy@2.service"]
    assert roll.args[3] == ["mlopsdeploy@2.service"]  # started, not restarted


def systemctl_output(target: str, worker_2: str) -> list[str]:
    """What `WorkerUnits` reads from a host (socket, target, both workers, no legacy unit)."""
    return [
        "socket active",
        "enabled enabled",
        f"target {target}",
        "worker mlopsdeploy@1.service active",
        f"worker mlopsdeploy@2.service {worker_2}",
        "legacy inactive",
    ]


def test_after_the_socket_restarted_a_stopped_app_a_deploy_changes_nothing(
    run_op, cfg: HostConfig
) -> None:
    # `systemctl stop mlopsdeploy.target`, then a connection: the socket starts worker 1, which
    # wants the target, which wants worker 2. The fact then reads what a deploy establishes.
    healed = WorkerUnits().process(systemctl_output("active", "active"))
    assert run_op(workers_running, {WorkerUnits: healed}, cfg=cfg, rollout=Rollout()) == []
    # Without the target (what hosts deployed before Wants= saw): worker 2 and the target
    # come back, and that deploy's own result then reads as the healed state above.
    half = WorkerUnits().process(systemctl_output("inactive", "inactive"))
    roll, target = run_op(workers_running, {WorkerUnits: half}, cfg=cfg, rollout=Rollout())
    assert roll.args[1] == roll.args[3] == ["mlopsdeploy@2.service"]
    assert target.endswith("systemctl --user start mlopsdeploy.target")


def test_a_deploy_while_the_workers_still_start_changes_nothing(run_op, cfg: HostConfig) -> None:
    # After a reboot or the socket's restart of a stopped app, the target waits for its
    # workers: a deploy that reads it then must not start it a second time.
    # What a VM showed: the target "inactive" with its start job queued behind the workers.
    starting = WorkerUnits().process(systemctl_output("inactive start", "activating"))
    assert starting.target_active
    assert run_op(workers_running, {WorkerUnits: starting}, cfg=cfg, rollout=Rollout()) == []
    stopped = WorkerUnits().process(systemctl_output("inactive", "active"))
    assert not stopped.target_active


def test_old_single_unit_goes_before_the_socket_takes_its_port(run_op, cfg: HostConfig) -> None:
    old = WorkerLayout(False, False, False, {}, legacy=True)
    commands = run_op(workers_running, {WorkerUnits: old}, cfg=cfg, rollout=Rollout())
    assert "disable --now mlopsdeploy.service" in commands[0]
    assert "rm -f /home/student-admin/.config/systemd/user/mlopsdeploy.service" in commands[0]
    assert commands[1].endswith("start mlopsdeploy.socket")
    assert isinstance(commands[2], FunctionCommand)
    assert [c.split()[-2:] for c in commands[3:]] == [
        ["enable", "mlopsdeploy.target"],
        ["start", "mlopsdeploy.target"],
    ]


def test_surplus_workers_are_stopped(run_op, cfg: HostConfig) -> None:
    three = layout(workers={"1": "active", "2": "active", "3": "active"})
    commands = run_op(workers_running, {WorkerUnits: three}, cfg=cfg, rollout=Rollout())
    assert commands == [
        'XDG_RUNTIME_DIR="/run/user/$(id -u)" systemctl --user stop mlopsdeploy@3.service'
    ]


def test_unchanged_units_are_not_uploaded(run_op, cfg: HostConfig) -> None:
    def digest(path: str) -> str:
        name = path.rsplit("/", 1)[1]
        text = {"mlopsdeploy.socket": render_socket, "mlopsdeploy@.service": render_worker}.get(
            name, render_target
        )(cfg)
        return f"{hashlib.sha256(text.encode()).hexdigest()} 644"

    assert run_op(unit_files, {FileDigest: digest}, cfg=cfg) == []


class Host:
    """Answers restarts: the units in `failing` do not become ready."""

    def __init__(self, failing: set[str]) -> None:
        self.failing = failing
        self.commands: list[str] = []

    def run_shell_command(self, command: str) -> tuple[bool, Any]:
        self.commands.append(command)
        unit = command.rsplit(" ", 1)[-1]
        return unit not in self.failing, type("Out", (), {"stdout_lines": ["not ready"]})()


def test_a_worker_that_was_down_is_started_the_others_restarted(cfg: HostConfig) -> None:
    host = Host(set())
    units = ["mlopsdeploy@1.service", "mlopsdeploy@2.service"]
    assert restart_in_turn(host, cfg, units, Rollout(), down=["mlopsdeploy@2.service"])  # type: ignore[arg-type]
    assert [c.split()[-2:] for c in host.commands] == [
        ["restart", "mlopsdeploy@1.service"],
        ["start", "mlopsdeploy@2.service"],
    ]


def test_the_roll_stops_at_the_first_worker_that_is_not_ready(cfg: HostConfig) -> None:
    host = Host({"mlopsdeploy@1.service"})
    rollout = Rollout()
    units = ["mlopsdeploy@1.service", "mlopsdeploy@2.service"]
    assert not restart_in_turn(host, cfg, units, rollout)  # type: ignore[arg-type]
    assert rollout.failed == "mlopsdeploy@1.service" and rollout.restarted == []
    assert not any("mlopsdeploy@2" in c for c in host.commands)  # worker 2 kept serving


def test_a_cold_host_starts_every_worker_at_once(run_op, cfg: HostConfig) -> None:
    # Nothing serves (a fresh VM, a wiped home): no roll to protect anyone, one start for all.
    cold = WorkerLayout(True, False, False, {"1": "failed", "2": "inactive"}, legacy=False)
    start, enable = run_op(workers_running, {WorkerUnits: cold}, cfg=cfg, rollout=Rollout())
    assert start.function is _start_together
    assert start.args[1] == ["mlopsdeploy@1.service", "mlopsdeploy@2.service"]
    assert enable.endswith("enable mlopsdeploy.target")  # started by the same command, unblocked


def test_one_worker_up_still_means_a_roll(run_op, cfg: HostConfig) -> None:
    half = WorkerLayout(True, True, True, {"1": "activating", "2": "failed"}, legacy=False)
    (roll,) = run_op(workers_running, {WorkerUnits: half}, cfg=cfg, rollout=Rollout())
    assert roll.function is not _start_together
    assert roll.args[1] == ["mlopsdeploy@2.service"]


FAKE_SYSTEMCTL = """#!/bin/sh
# A stand-in for `systemctl --user`: each unit as it was before the start (logged in
# shown-before), its stale invocation for one more read while the start job has not run yet,
# then the states listed in <unit>.after, one per read.
d=$(dirname "$0")
case "$1" in
start) shift; echo "$@" >> "$d/started"; exit 0 ;;
show)
  for u; do :; done
  if [ ! -s "$d/started" ]; then
    echo "$*" >> "$d/shown-before"
    if [ -e "$d/$u.socket" ]; then  # started by the socket before: the start job changes nothing
      printf 'SubState=start\\nNRestarts=3\\nInvocationID=old-%s\\n' "$u"
    else
      printf 'SubState=failed\\nNRestarts=3\\nInvocationID=old-%s\\n' "$u"
    fi
    exit 0
  fi
  if [ -e "$d/$u.socket" ]; then
    sed -n 1p "$d/$u.after" | tr ' ' '\\n'; echo "InvocationID=old-$u"; exit 0
  fi
  n=$(cat "$d/$u.reads" 2>/dev/null || echo 0); echo $((n + 1)) > "$d/$u.reads"
  if [ "$n" -eq 0 ]; then
    printf 'ActiveState=failed\\nSubState=failed\\nNRestarts=3\\n'
    printf 'StatusText=\\nInvocationID=old-%s\\n' "$u"
    exit 0
  fi
  line=$(sed -n "${n}p" "$d/$u.after"); [ -n "$line" ] || line=$(tail -n 1 "$d/$u.after")
  printf '%s\\nInvocationID=new-%s\\n' "$line" "$u" | tr ' ' '\\n' ;;
esac
"""


# A worker whose JSON API serves, its UI still building (see ACCEPTING_STATUS).
ACCEPTING = "ActiveState=activating SubState=start NRestarts=0 StatusText=accepting"


def run_start_script(tmp_path: Path, after: dict[str, list[str]]) -> tuple[int, str, str]:
    ctl = tmp_path / "systemctl"
    ctl.write_text(FAKE_SYSTEMCTL)
    ctl.chmod(0o755)
    for unit, states in after.items():
        (tmp_path / f"{unit}.after").write_text("\n".join(states) + "\n")
    script = start_script(str(ctl), list(after), timeout=60)
    done = subprocess.run(["sh", "-c", script], capture_output=True, text=True, timeout=60)
    return done.returncode, done.stdout.strip(), (tmp_path / "started").read_text()


def test_the_cold_start_returns_once_every_worker_accepts(tmp_path: Path) -> None:
    starting = "ActiveState=activating SubState=start NRestarts=0 StatusText="
    code, out, started = run_start_script(
        tmp_path,
        {"mlopsdeploy@1.service": [starting, ACCEPTING], "mlopsdeploy@2.service": [ACCEPTING]},
    )
    # The stale "failed" read before each start job ran is not taken for a failure.
    assert (code, out) == (0, "")
    # Before the start, one `systemctl show` per worker tells all the wait needs of it.
    assert len((tmp_path / "shown-before").read_text().splitlines()) == 2
    assert started.split() == [
        "--no-block",
        "mlopsdeploy.target",
        "mlopsdeploy@1.service",
        "mlopsdeploy@2.service",
    ]


def test_the_cold_start_names_a_worker_that_systemd_restarts(tmp_path: Path) -> None:
    failing = "ActiveState=activating SubState=auto-restart NRestarts=0 StatusText="
    code, out, _ = run_start_script(
        tmp_path, {"mlopsdeploy@1.service": [ACCEPTING], "mlopsdeploy@2.service": [failing]}
    )
    assert (code, out) == (1, "mlopsdeploy@2.service")


@pytest.mark.parametrize(
    ("state", "up"),
    [
        ("ActiveState=active StatusText=serving", True),  # READY=1
        ("ActiveState=activating StatusText=accepting", True),  # its UI still building
        ("ActiveState=activating StatusText=", False),  # still loading its model
        ("ActiveState=failed StatusText=accepting", False),  # its last status outlived it
        ("ActiveState=deactivating StatusText=accepting", False),  # on its way out
    ],
)
def test_a_worker_accepts_when_active_or_activating_and_saying_so(state: str, up: bool) -> None:
    script = f"s=$(echo {state} | tr ' ' '\\n'); {accepts('s')}"
    assert subprocess.run(["sh", "-c", script], check=False).returncode == (0 if up else 1)


def test_the_cold_start_does_not_take_a_stopping_worker_for_an_accepting_one(
    tmp_path: Path,
) -> None:
    # Its status still says accepting, but it is going away: systemd restarting it next is a
    # failed start, as `mlopsdeploy status` never counted it up (the same rule, `accepts`).
    stopping = "ActiveState=deactivating SubState=stop-sigterm NRestarts=0 StatusText=accepting"
    failing = "ActiveState=activating SubState=auto-restart NRestarts=0 StatusText=accepting"
    code, out, _ = run_start_script(
        tmp_path,
        {"mlopsdeploy@1.service": [ACCEPTING], "mlopsdeploy@2.service": [stopping, failing]},
    )
    assert (code, out) == (1, "mlopsdeploy@2.service")


def test_the_cold_start_takes_a_worker_the_socket_already_started(tmp_path: Path) -> None:
    # A client (or HAProxy's health check) made the socket start worker 1 before the deploy's
    # start: that start leaves its invocation as it is, and it must still count once it accepts.
    (tmp_path / "mlopsdeploy@1.service.socket").touch()
    code, out, _ = run_start_script(
        tmp_path, {"mlopsdeploy@1.service": [ACCEPTING], "mlopsdeploy@2.service": [ACCEPTING]}
    )
    assert (code, out) == (0, "")


def test_the_cold_start_counts_restarts_from_its_own_start(tmp_path: Path) -> None:
    # Each worker was crash-looping before (3 restarts: a wiped home, or a start by the socket
    # before its release was there). systemd keeps counting across the start: its pending
    # restart is that start (4) and serves; one more (5) is a worker that failed again.
    restarted = "ActiveState=activating SubState=start NRestarts=4 StatusText=accepting"
    again = "ActiveState=activating SubState=start NRestarts=5 StatusText="
    code, out, _ = run_start_script(
        tmp_path, {"mlopsdeploy@1.service": [restarted], "mlopsdeploy@2.service": [restarted]}
    )
    assert (code, out) == (0, "")
    (tmp_path / "again").mkdir()
    code, out, _ = run_start_script(
        tmp_path / "again", {"mlopsdeploy@1.service": [restarted], "mlopsdeploy@2.service": [again]}
    )
    assert (code, out) == (1, "mlopsdeploy@2.service")


def test_a_failed_cold_start_is_recorded_for_the_gate(cfg: HostConfig) -> None:
    class ColdHost:
        def __init__(self) -> None:
            self.commands: list[str] = []

        def run_shell_command(self, command: str) -> tuple[bool, Any]:
            self.commands.append(command)
            lines = ["mlopsdeploy@2.service"] if len(self.commands) == 1 else ["journal line"]
            return len(self.commands) > 1, type("Out", (), {"stdout_lines": lines})()

    host = ColdHost()
    rollout = Rollout()
    units = ["mlopsdeploy@1.service", "mlopsdeploy@2.service"]
    assert not start_together(host, cfg, units, rollout)  # type: ignore[arg-type]
    assert rollout.failed == "mlopsdeploy@2.service"
    assert rollout.restarted == ["mlopsdeploy@1.service"]  # started too: the gate undoes both
    assert rollout.journal
