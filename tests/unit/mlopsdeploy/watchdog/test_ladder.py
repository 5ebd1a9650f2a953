"""The escalation ladder: each diagnosis leads to the smallest repair that can fix it."""

from __future__ import annotations

from dataclasses import replace

import pytest

from mlopsdeploy.watchdog.diagnosis import Diagnosis, HostKey, LoginKey, ServiceState
from mlopsdeploy.watchdog.ladder import HostKeyPolicy, Rung, Situation, Verdict, decide

NOW = 1000.0
RUNNING_OLD = ServiceState("loaded", "active", "running", 42, "S", 3600.0)
BASE = Situation(
    now=NOW,
    confirm_until=NOW - 1,
    fault_since=NOW - 3,
    heal_until=NOW + 30,
    next_action_at=0.0,
    last_rung=None,
    budget_left=6,
)


def logged_in(service: ServiceState | None = RUNNING_OLD, **kw: object) -> Diagnosis:
    values: dict = {
        "ssh_banner": "SSH-2.0-OpenSSH_9.2",
        "host_key": HostKey.RECORDED,
        "login": LoginKey.OWN,
        "service": service,
    }
    values.update(kw)
    return Diagnosis(**values)


def verdict(
    diagnosis: Diagnosis, situation: Situation = BASE, policy=HostKeyPolicy.ACCEPT_PRISTINE
):
    return decide(diagnosis, situation, policy)


def test_unreachable_host_waits_with_backoff_and_never_repairs() -> None:
    d = verdict(Diagnosis(ssh_banner=None, error="timed out"))
    assert (d.verdict, d.backoff, d.rung) == (Verdict.WAIT, True, None)


def test_crash_that_systemd_is_restarting_needs_no_action() -> None:
    restarting = ServiceState("loaded", "activating", "auto-restart", 0)
    d = verdict(logged_in(restarting))
    assert d.verdict == Verdict.WAIT
    assert d.reason.startswith("no action needed")


def test_process_started_after_the_fault_is_given_time_to_load() -> None:
    young = ServiceState("loaded", "active", "running", 77, "S", 2.0)
    d = verdict(logged_in(young))
    assert d.verdict == Verdict.WAIT
    assert "no action needed" in d.reason


def test_restarted_service_that_never_gets_ready_is_restarted_after_the_grace() -> None:
    young = ServiceState("loaded", "active", "running", 77, "S", 2.0)
    d = verdict(logged_in(young), replace(BASE, heal_until=NOW - 1))
    assert (d.verdict, d.rung) == (Verdict.ACT, Rung.RESTART)


@pytest.mark.parametrize(
    "service",
    [
        ServiceState("loaded", "active", "running", 42, "T", 3600.0),
        ServiceState("loaded", "inactive", "dead", 0),
        ServiceState("loaded", "failed", "failed", 0),
    ],
    ids=["sigstopped", "stopped", "failed"],
)
def test_frozen_or_stopped_service_is_restarted_at_once(service: ServiceState) -> None:
    d = verdict(logged_in(service), replace(BASE, confirm_until=NOW + 5))
    assert (d.verdict, d.rung) == (Verdict.ACT, Rung.RESTART)


def test_a_stopping_service_is_looked_at_again_before_acting() -> None:
    stopping = ServiceState("loaded", "deactivating", "stop-sigterm", 42, "S", 3600.0)
    assert verdict(logged_in(stopping)).verdict == Verdict.WAIT


def test_a_running_service_that_fails_briefly_is_confirmed_first() -> None:
    assert verdict(logged_in(), replace(BASE, confirm_until=NOW + 5)).verdict == Verdict.WAIT
    assert verdict(logged_in(), BASE).rung == Rung.RESTART


def test_missing_unit_dead_service_manager_or_lost_own_key_is_a_redeploy() -> None:
    missing = ServiceState("not-found", "inactive", "dead")
    assert verdict(logged_in(missing)).rung == Rung.REDEPLOY
    no_manager = ServiceState("unknown", "unknown", "unknown", manager_down=True)
    assert verdict(logged_in(no_manager)).rung == Rung.REDEPLOY
    home_wiped = logged_in(None, login=LoginKey.DEFAULT)
    assert verdict(home_wiped).rung == Rung.REDEPLOY


def test_service_state_that_could_not_be_read_is_looked_at_again_later() -> None:
    d = verdict(logged_in(None, error="command failed to run: ConnectionResetError"))
    assert (d.verdict, d.backoff) == (Verdict.WAIT, True)


def test_wiped_vm_is_reprovisioned_under_the_default_policy() -> None:
    wiped = logged_in(None, host_key=HostKey.CHANGED, login=LoginKey.DEFAULT)
    assert verdict(wiped).rung == Rung.REPROVISION


def test_changed_host_key_is_refused_when_the_policy_says_so() -> None:
    wiped = logged_in(None, host_key=HostKey.CHANGED, login=LoginKey.DEFAULT)
    later = replace(BASE, heal_until=NOW - 1)
    assert verdict(wiped, later, policy=HostKeyPolicy.REFUSE).verdict == Verdict.GIVE_UP


def test_changed_host_key_on_a_host_that_does_not_look_pristine_is_not_accepted() -> None:
    impostor = logged_in(None, host_key=HostKey.CHANGED, login=LoginKey.NONE)
    d = verdict(impostor, replace(BASE, heal_until=NOW - 1))
    assert d.verdict == Verdict.GIVE_UP
    assert "not accepting" in d.reason


def test_locked_out_host_is_looked_at_again_then_given_up() -> None:
    locked_out = logged_in(None, login=LoginKey.NONE)
    early = verdict(locked_out)
    assert (early.verdict, early.backoff) == (Verdict.WAIT, True)  # e.g. a home being restored
    assert verdict(locked_out, replace(BASE, heal_until=NOW - 1)).verdict == Verdict.GIVE_UP


def test_a_repair_that_did_not_help_moves_one_rung_up_but_not_past_the_top() -> None:
    after_restart = replace(BASE, last_rung=Rung.RESTART)
    assert verdict(logged_in(), after_restart).rung == Rung.REDEPLOY
    after_redeploy = replace(BASE, last_rung=Rung.REDEPLOY)
    assert verdict(logged_in(), after_redeploy).rung == Rung.REDEPLOY
    wiped = logged_in(None, host_key=HostKey.CHANGED, login=LoginKey.DEFAULT)
    assert verdict(wiped, after_redeploy).rung == Rung.REPROVISION


def test_cooldown_delays_the_next_repair() -> None:
    d = verdict(logged_in(), replace(BASE, next_action_at=NOW + 10, last_rung=Rung.RESTART))
    assert d.verdict == Verdict.WAIT
    assert d.rung == Rung.REDEPLOY
    assert "cooling down" in d.reason


def test_exhausted_hourly_budget_gives_up() -> None:
    d = verdict(logged_in(), replace(BASE, budget_left=0))
    assert d.verdict == Verdict.GIVE_UP
    assert "limit" in d.reason
