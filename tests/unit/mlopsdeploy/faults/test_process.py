from __future__ import annotations

import signal
import subprocess
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from mlopsdeploy.faults import (
    CommandFailed,
    FaultError,
    HangApp,
    KillApp,
    KillUser,
    NotApplicable,
    OomWorker,
    RestartService,
    Service,
    StopService,
    Target,
)


def _reaches_state(pid: int, states: str, seconds: float = 5.0) -> bool:
    """Whether the process state letter in /proc (T = stopped) becomes one of `states`.

    A signal takes effect when the kernel next schedules the process, so this polls.
    """
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] in states:
            return True
        time.sleep(0.01)
    return False


def test_sigkill_kills_the_units_main_pid(
    app_process: subprocess.Popen[bytes], local_guest: Any, make_target: Any
) -> None:
    KillApp().inject(make_target(local_guest(app_process.pid)))
    assert app_process.wait(timeout=5) == -signal.SIGKILL


def test_sigstop_hangs_the_process_and_undo_resumes_it(
    app_process: subprocess.Popen[bytes], local_guest: Any, make_target: Any
) -> None:
    target = make_target(local_guest(app_process.pid))
    HangApp().inject(target)
    assert _reaches_state(app_process.pid, "T")
    HangApp().undo(target)
    assert _reaches_state(app_process.pid, "SR")


def test_signal_fails_when_the_unit_has_no_main_process(local_guest: Any, make_target: Any) -> None:
    with pytest.raises(CommandFailed):
        KillApp().inject(make_target(local_guest(0)))


def test_service_stop_uses_the_units_manager(guest: Any, make_target: Any) -> None:
    StopService().inject(make_target(guest))
    assert guest.commands[0].endswith("systemctl --user stop mlopsdeploy.service")
    system = Service("app.service", 80, user_scope=False)
    assert system.systemctl("stop", "app.service") == "sudo -n systemctl stop app.service"


def test_kill_user_accepts_losing_its_own_session_only(guest: Any, make_target: Any) -> None:
    guest.answers["pkill"] = 255
    KillUser().inject(make_target(guest))
    guest.answers["pkill"] = 1
    with pytest.raises(CommandFailed):
        KillUser().inject(make_target(guest))


def _two_workers(target: Target) -> Target:
    workers = ("mlopsdeploy@1.service", "mlopsdeploy@2.service")
    return replace(target, service=Service("mlopsdeploy.target", 8000, workers=workers))


def test_worker_faults_hit_worker_one_only_and_need_a_second(guest: Any, make_target: Any) -> None:
    single = make_target(guest)
    assert "needs 2 workers" in str(KillApp(worker=1).not_applicable(single))
    with pytest.raises(NotApplicable, match="needs 2 workers"):
        KillApp(worker=1).inject(single)
    workers = _two_workers(single)
    KillApp(worker=1).inject(workers)
    (command,) = guest.commands
    assert "mlopsdeploy@1.service" in command and "mlopsdeploy@2.service" not in command
    assert "kill -KILL $pids" in command
    RestartService().inject(workers)
    assert guest.commands[-1].endswith("systemctl --user restart mlopsdeploy.target")


def test_fault_names_stay_as_the_catalogue_knows_them() -> None:
    names = [KillApp(), HangApp(), KillApp(worker=1), HangApp(worker=1)]
    assert [f.name for f in names] == ["sigkill", "sigstop", "sigkill-worker", "sigstop-worker"]
    assert [f.lossless for f in names] == [False, False, True, True]


def test_a_stopped_worker_is_not_continued_but_waited_for_until_systemd_replaced_it(
    guest: Any, make_target: Any
) -> None:
    guest.answers["kill -STOP"] = "4242\n"
    target = _two_workers(make_target(guest))
    fault = HangApp(worker=1)
    fault.inject(target)
    fault.undo(target)
    wait = guest.commands[-1]
    assert wait.startswith("timeout 120 sh -c")
    assert "!= 4242" in wait and "is-active mlopsdeploy@1.service" in wait
    assert not any("CONT" in command for command in guest.commands)
    fault.undo(target)  # nothing injected any more: nothing to wait for
    assert guest.commands[-1] == wait


def test_a_worker_systemd_never_replaces_fails_the_fault_and_is_continued(
    guest: Any, make_target: Any
) -> None:
    guest.answers["kill -STOP"] = "4242\n"
    guest.answers["timeout 120"] = 124
    target = _two_workers(make_target(guest))
    fault = HangApp(worker=1)
    fault.inject(target)
    with pytest.raises(FaultError, match=r"did not replace mlopsdeploy@1\.service"):
        fault.undo(target)
    assert guest.commands[-1].startswith("kill -CONT 4242")


def test_sigkill_says_it_hits_every_worker(guest: Any, make_target: Any) -> None:
    target = make_target(guest)
    target = replace(
        target, service=replace(target.service, workers=("a@1.service", "a@2.service"))
    )
    KillApp().inject(target)
    assert "a@1.service a@2.service" in guest.commands[0]
    assert "every process serving the app" in KillApp().breaks


def test_oom_lowers_worker_ones_memory_limit_until_systemd_saw_the_kill_then_lifts_it(
    guest: Any, make_target: Any
) -> None:
    guest.answers["NRestarts"] = "3\n"
    target = _two_workers(make_target(guest))
    assert OomWorker().not_applicable(target) is None
    OomWorker().inject(target)
    lower, wait, lift = guest.commands[-3:]
    # No swap either: with swap the kernel pages the model out instead of killing the worker.
    assert lower.endswith(
        "set-property --runtime mlopsdeploy@1.service MemoryMax=32M MemorySwapMax=0"
    )
    # The kill counts once systemd recorded it: the unit's result, or one more restart than 3.
    assert wait.startswith("timeout 30 sh -c") and "= oom-kill" in wait and "!= 3" in wait
    assert lift.endswith(
        "set-property --runtime mlopsdeploy@1.service MemoryMax=infinity MemorySwapMax=infinity"
    )
    assert not any("mlopsdeploy@2" in command for command in guest.commands)


def test_oom_lifts_the_limit_when_the_kill_never_comes(guest: Any, make_target: Any) -> None:
    guest.answers["timeout 30"] = 124
    target = _two_workers(make_target(guest))
    with pytest.raises(CommandFailed):
        OomWorker().inject(target)
    assert guest.commands[-1].endswith("MemoryMax=infinity MemorySwapMax=infinity")


def test_oom_is_skipped_without_a_memory_controller_saying_why(
    guest: Any, make_target: Any
) -> None:
    # nspawn test VMs here: cgroup.controllers is empty, so a worker's cgroup has no memory.max.
    guest.answers["memory.max"] = 1
    reason = OomWorker().not_applicable(_two_workers(make_target(guest)))
    assert (
        reason == "vm1 gives mlopsdeploy@1.service no memory controller (MemoryMax has no effect)"
    )
    assert "needs 2 workers" in str(OomWorker().not_applicable(make_target(guest)))
