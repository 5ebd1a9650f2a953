"""The probe loop of one host, ticked by hand with a fake clock, probe, diagnosis and repairs."""

from __future__ import annotations

import itertools
import threading
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from mlopsdeploy.watchdog.alerts import alert_text
from mlopsdeploy.watchdog.diagnosis import Diagnosis, HostKey, LoginKey, ServiceState
from mlopsdeploy.watchdog.guards import host_lock
from mlopsdeploy.watchdog.journal import Incident, Journal, Step
from mlopsdeploy.watchdog.ladder import Rung
from mlopsdeploy.watchdog.watcher import (
    HostWatcher,
    ProbeOutcome,
    RepairResult,
    WatchSettings,
    run_watchers,
)

SETTINGS = WatchSettings(
    interval_s=2.0, heal_grace_s=30.0, cooldown_s=20.0, backoff_cap_s=600.0, max_actions_per_hour=3
)
OK = ProbeOutcome(True, "ready")
REFUSED = ProbeOutcome(False, "ConnectError: connection refused")


def logged_in(service: ServiceState) -> Diagnosis:
    return Diagnosis("SSH-2.0-OpenSSH_9.2", HostKey.RECORDED, LoginKey.OWN, service)


RESTARTING = logged_in(ServiceState("loaded", "activating", "auto-restart"))
STOPPED = logged_in(ServiceState("loaded", "inactive", "dead"))
HUNG = logged_in(ServiceState("loaded", "active", "running", 42, "S", 7200.0))
UNREACHABLE = Diagnosis(None, error="timed out")


@dataclass
class FakeHost:
    """Scripted probe outcomes and diagnoses; records every call; repairs take `repair_s`."""

    probes: list[ProbeOutcome]
    diagnosis: Diagnosis = HUNG
    repair_ok: bool = True
    repair_s: float = 5.0
    now: float = 1000.0
    repairs: list[Rung] = field(default_factory=list)
    diagnoses: int = 0
    alerts: list[str] = field(default_factory=list)
    alert_texts: list[str] = field(default_factory=list)
    notice: str = ""

    def clock(self) -> float:
        return self.now

    def probe(self) -> ProbeOutcome:
        return self.probes.pop(0) if len(self.probes) > 1 else self.probes[0]

    def diagnose(self) -> Diagnosis:
        self.diagnoses += 1
        return self.diagnosis

    def repair(self, rung: Rung) -> RepairResult:
        self.repairs.append(rung)
        self.now += self.repair_s
        detail = "done" if self.repair_ok else "gate refused"
        return RepairResult(self.repair_ok, detail, self.notice)

    def send(self, event: str, incident: Incident) -> None:
        self.alerts.append(event)
        self.alert_texts.append(alert_text(event, incident))


def make_watcher(host: FakeHost, tmp_path: Path, settings: WatchSettings = SETTINGS) -> HostWatcher:
    return HostWatcher(
        "vm1",
        probe=host.probe,
        diagnose=host.diagnose,
        repair=host.repair,
        journal=Journal(tmp_path / "incidents.jsonl"),
        alerter=host,
        lock=host_lock(tmp_path / "locks", "vm1"),
        settings=settings,
        clock=host.clock,
    )


def run_ticks(watcher: HostWatcher, host: FakeHost, ticks: int) -> None:
    for _ in range(ticks):
        watcher.tick()
        host.now += SETTINGS.interval_s


def recorded(tmp_path: Path) -> list[Incident]:
    return Journal(tmp_path / "incidents.jsonl").incidents()


def test_healthy_host_leaves_no_trace(tmp_path: Path) -> None:
    host = FakeHost([OK])
    run_ticks(make_watcher(host, tmp_path), host, 5)
    assert (host.diagnoses, host.repairs, host.alerts) == (0, [], [])
    assert recorded(tmp_path) == []


def test_crash_healed_by_systemd_is_journaled_as_no_action_needed(tmp_path: Path) -> None:
    host = FakeHost([OK, REFUSED, REFUSED, OK], diagnosis=RESTARTING)
    run_ticks(make_watcher(host, tmp_path), host, 6)
    (incident,) = recorded(tmp_path)
    assert host.repairs == []
    assert incident.state == "recovered"
    assert [(s.action, s.result) for s in incident.steps] == [("none", "no action needed")]
    assert incident.seconds_to_detect == 2.0
    assert incident.seconds_to_recover == 4.0
    assert host.alerts == ["detected", "recovered"]


def test_stopped_service_is_restarted_once_then_recovers(tmp_path: Path) -> None:
    host = FakeHost([OK, REFUSED, OK], diagnosis=STOPPED)
    run_ticks(make_watcher(host, tmp_path), host, 5)
    (incident,) = recorded(tmp_path)
    assert host.repairs == [Rung.RESTART]
    assert [(s.action, s.result, s.seconds) for s in incident.steps] == [("restart", "ok", 5.0)]
    assert incident.diagnosis == STOPPED.summary()
    assert incident.state == "recovered"


def test_reprovision_without_secrets_says_so_in_journal_and_alert(tmp_path: Path) -> None:
    """A re-imaged host (or an impostor) got the app but not the token: the person is told
    what happened and which command confirms the key."""
    notice = "secrets withheld: the new host key SHA256:x of vm1 ...; run: mlopsdeploy trust vm1"
    reimaged = Diagnosis("SSH-2.0-OpenSSH_9.2", HostKey.CHANGED, LoginKey.DEFAULT)
    host = FakeHost([OK, REFUSED, OK], diagnosis=reimaged, notice=notice)
    run_ticks(make_watcher(host, tmp_path), host, 5)
    (incident,) = recorded(tmp_path)
    assert host.repairs == [Rung.REPROVISION]
    assert [(s.action, s.result) for s in incident.steps] == [("reprovision", f"ok; {notice}")]
    assert host.alerts == ["detected", "recovered"]
    assert host.alert_texts[-1].endswith(f"(reprovision); {notice}")


def test_persistent_fault_escalates_backs_off_and_gives_up_loudly_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    host = FakeHost([OK, REFUSED], diagnosis=HUNG, repair_ok=False)
    watcher = make_watcher(host, tmp_path)
    run_ticks(watcher, host, 300)  # 10 minutes of a fault nothing can repair
    assert host.repairs == [Rung.RESTART, Rung.REDEPLOY, Rung.REDEPLOY]
    assert watcher.incident is not None
    repairs = watcher.incident.actions
    gaps = [b.at - (a.at + a.seconds) for a, b in itertools.pairwise(repairs)]
    assert gaps[0] >= 20.0 and gaps[1] >= 40.0  # cooldown, then doubled
    assert host.alerts == ["detected", "gave_up"]
    assert "GIVING UP on vm1" in caplog.text
    assert (
        host.diagnoses < 20
    )  # cooldowns and giving up, looked at 2, 4, 8 ... s apart, not every probe
    (incident,) = recorded(tmp_path)
    assert incident.state == "gave_up"
    assert incident.steps[-1].action == "give_up"


def test_probing_goes_on_after_giving_up_and_notices_recovery(tmp_path: Path) -> None:
    host = FakeHost([OK, REFUSED], diagnosis=HUNG, repair_ok=False)
    watcher = make_watcher(host, tmp_path)
    run_ticks(watcher, host, 200)
    host.probes = [OK]
    run_ticks(watcher, host, 1)
    assert host.alerts == ["detected", "gave_up", "recovered"]
    assert recorded(tmp_path)[0].state == "recovered"


def test_unreachable_host_is_diagnosed_with_backoff_and_never_repaired(tmp_path: Path) -> None:
    host = FakeHost([OK, REFUSED], diagnosis=UNREACHABLE)
    watcher = make_watcher(host, tmp_path)
    run_ticks(watcher, host, 150)  # 5 minutes
    assert host.repairs == []
    assert host.diagnoses <= 9  # 2, 4, 8, ... s apart instead of every 2 s (150 probes)
    host.probes = [OK]
    run_ticks(watcher, host, 1)
    (incident,) = recorded(tmp_path)
    assert incident.state == "recovered"
    assert [s.reason for s in incident.steps] == ["host unreachable: waiting for it"]


def test_repair_is_skipped_while_another_process_holds_the_host_lock(tmp_path: Path) -> None:
    host = FakeHost([OK, REFUSED], diagnosis=STOPPED)
    watcher = make_watcher(host, tmp_path)
    with host_lock(tmp_path / "locks", "vm1").hold() as held:
        assert held
        run_ticks(watcher, host, 3)
    assert host.repairs == []
    assert "lock held" in recorded(tmp_path)[0].steps[-1].reason
    run_ticks(watcher, host, 1)
    assert host.repairs == [Rung.RESTART]


def test_repairs_from_an_earlier_run_count_against_the_hourly_limit(tmp_path: Path) -> None:
    earlier = Incident("vm1", "refused", 900.0, 898.0, recovered_at=990.0)
    earlier.steps = [Step(t, "restart", "stopped", "ok") for t in (901.0, 930.0, 960.0)]
    Journal(tmp_path / "incidents.jsonl").record("recovered", earlier)
    host = FakeHost([REFUSED], diagnosis=STOPPED)
    run_ticks(make_watcher(host, tmp_path), host, 3)
    assert host.repairs == []
    assert host.alerts == ["detected", "gave_up"]


def test_exceptions_from_probe_diagnosis_and_repair_do_not_stop_the_loop(tmp_path: Path) -> None:
    def boom() -> ProbeOutcome:
        raise RuntimeError("surprise")

    host = FakeHost([REFUSED], diagnosis=STOPPED)
    watcher = make_watcher(host, tmp_path)
    watcher._probe = boom
    watcher._diagnose = boom  # type: ignore[assignment]
    watcher._repair = lambda rung: boom()  # type: ignore[assignment,return-value]
    run_ticks(watcher, host, 3)
    assert watcher.incident is not None
    assert watcher.incident.symptom == "probe error: RuntimeError: surprise"


def test_run_watchers_ticks_each_host_until_stopped(tmp_path: Path) -> None:
    stop = threading.Event()
    ticks = {"a": 0, "b": 0}

    class Counting:
        def __init__(self, host: str) -> None:
            self.host = host

        def tick(self) -> None:
            ticks[self.host] += 1
            if min(ticks.values()) >= 3:
                stop.set()

    run_watchers([Counting("a"), Counting("b")], 0.0, stop)  # type: ignore[list-item]
    assert min(ticks.values()) >= 3
