"""The probe loop of one host, and the watchdog that runs one loop per host.

Each tick: probe readiness (labels included); on failure open an incident, diagnose from
outside, let the ladder decide, and act under the guards. Probing goes on every tick whatever
happens - while waiting, after giving up - because recovery must be noticed as quickly as
failure. Probe, diagnosis, repairs and the clock are injected: the loop itself is pure
bookkeeping and is unit-tested with fakes, no host and no sleeping.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from mlopsdeploy.watchdog.alerts import Alerter
from mlopsdeploy.watchdog.diagnosis import Diagnosis
from mlopsdeploy.watchdog.guards import ActionBudget, FileLock, backoff_delay
from mlopsdeploy.watchdog.journal import NO_ACTION, Incident, Journal, Step
from mlopsdeploy.watchdog.ladder import Decision, HostKeyPolicy, Rung, Situation, Verdict, decide

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ProbeOutcome:
    ok: bool
    detail: str


@dataclass(frozen=True)
class RepairResult:
    ok: bool
    detail: str
    notice: str = ""
    """What a person must know or do even though the repair worked (journaled and alerted)."""


@dataclass(frozen=True)
class WatchSettings:
    """Timings and limits; defaults suit a course VM watched from a laptop."""

    interval_s: float = 2.0
    confirm_s: float = 10.0
    """How long a running service must keep failing its probes before it is restarted."""
    heal_grace_s: float = 60.0
    """How long systemd gets to bring a crashed service back, and a restarted app to load."""
    cooldown_s: float = 20.0
    """Pause after a repair; doubles with each further repair in the same incident."""
    backoff_cap_s: float = 600.0
    max_actions_per_hour: int = 6
    host_key_policy: HostKeyPolicy = HostKeyPolicy.ACCEPT_PRISTINE


class Clock(Protocol):
    def __call__(self) -> float: ...


class HostWatcher:
    """Probe, diagnose and repair one host; `tick()` is one round of the loop."""

    def __init__(
        self,
        host: str,
        *,
        probe: Callable[[], ProbeOutcome],
        diagnose: Callable[[], Diagnosis],
        repair: Callable[[Rung], RepairResult],
        journal: Journal,
        alerter: Alerter,
        lock: FileLock,
        settings: WatchSettings,
        clock: Clock = time.time,
    ) -> None:
        self.host = host
        self._probe = probe
        self._diagnose = diagnose
        self._repair = repair
        self._journal = journal
        self._alerter = alerter
        self._lock = lock
        self._settings = settings
        self._clock = clock
        self.budget = ActionBudget(settings.max_actions_per_hour, journal.action_times(host))
        self.incident: Incident | None = None
        self._last_ok_at: float | None = None
        self._next_diagnosis_at = 0.0
        self._idle_streak = 0

    def tick(self) -> None:
        outcome = self._safe_probe()
        now = self._clock()
        if outcome.ok:
            self._healthy(now, outcome.detail)
            return
        if self.incident is None:
            self._open(now, outcome.detail)
        if now < self._next_diagnosis_at:
            return
        diagnosis = self._safe_diagnose()
        incident = self.incident
        assert incident is not None
        incident.diagnosis = diagnosis.summary()
        log.debug("%s: diagnosis: %s", self.host, incident.diagnosis)
        decision = decide(diagnosis, self._situation(self._clock()), self._settings.host_key_policy)
        self._apply(decision)

    def _healthy(self, now: float, detail: str) -> None:
        incident = self.incident
        if incident is None and self._last_ok_at is None:
            log.info("%s healthy: %s", self.host, detail)
        if incident is not None:
            incident.recovered_at = now
            log.info("%s recovered after %.1fs", self.host, incident.seconds_to_recover)
            self._journal.record("recovered", incident)
            self._alerter.send("recovered", incident)
        self.incident = None
        self._last_ok_at = now
        self._next_diagnosis_at = 0.0
        self._idle_streak = 0

    def _open(self, now: float, symptom: str) -> None:
        self.incident = Incident(self.host, symptom, now, self._last_ok_at)
        log.warning("%s failing: %s", self.host, symptom)
        self._journal.record("detected", self.incident)
        self._alerter.send("detected", self.incident)

    def _situation(self, now: float) -> Situation:
        incident = self.incident
        assert incident is not None
        actions = incident.actions
        last_action_end = actions[-1].at + actions[-1].seconds if actions else incident.detected_at
        cfg = self._settings
        return Situation(
            now=now,
            confirm_until=incident.detected_at + cfg.confirm_s,
            fault_since=(
                self._last_ok_at
                if self._last_ok_at is not None
                else incident.detected_at - cfg.heal_grace_s
            ),
            heal_until=last_action_end + cfg.heal_grace_s,
            next_action_at=(
                last_action_end + backoff_delay(cfg.cooldown_s, len(actions), cfg.backoff_cap_s)
                if actions
                else 0.0
            ),
            last_rung=Rung[actions[-1].action.upper()] if actions else None,
            budget_left=self.budget.left(now),
        )

    def _apply(self, decision: Decision) -> None:
        now = self._clock()
        idle = decision.backoff or decision.verdict == Verdict.GIVE_UP
        self._idle_streak = self._idle_streak + 1 if idle else 0
        if idle:
            # Nothing to do but look again later: 2, 4, 8 ... s apart, not every probe.
            cfg = self._settings
            delay = backoff_delay(cfg.interval_s, self._idle_streak, cfg.backoff_cap_s)
            self._next_diagnosis_at = now + delay
        if decision.look_again_at is not None:
            self._next_diagnosis_at = decision.look_again_at
        if decision.verdict == Verdict.WAIT:
            if decision.rung is None:
                self._note(now, decision.reason)
            return
        if decision.verdict == Verdict.GIVE_UP:
            self._give_up(now, decision.reason)
            return
        assert decision.rung is not None
        self._act(now, decision.rung, decision.reason)

    def _note(self, now: float, reason: str) -> None:
        """Journal a decision to leave the host alone, once per distinct reason."""
        incident = self.incident
        assert incident is not None
        if incident.steps and incident.steps[-1].reason == reason:
            return
        log.info("%s: %s", self.host, reason)
        incident.steps.append(Step(now, NO_ACTION, reason, "no action needed"))
        self._journal.record("step", incident)

    def _give_up(self, now: float, reason: str) -> None:
        incident = self.incident
        assert incident is not None
        if incident.gave_up_at is not None:
            return
        incident.gave_up_at = now
        incident.steps.append(Step(now, "give_up", reason, "gave up; still probing"))
        log.critical(
            "GIVING UP on %s after %d repairs: %s (still probing every %.0fs)",
            self.host,
            len(incident.actions),
            reason,
            self._settings.interval_s,
        )
        self._journal.record("gave_up", incident)
        self._alerter.send("gave_up", incident)

    def _act(self, now: float, rung: Rung, reason: str) -> None:
        incident = self.incident
        assert incident is not None
        with self._lock.hold() as held:
            if not held:
                self._note(now, "another recovery of this host is running (lock held)")
                return
            incident.gave_up_at = None
            self.budget.record(now)
            log.warning("%s: %s", self.host, reason)
            result = self._safe_repair(rung)
        took = self._clock() - now
        outcome = "ok" if result.ok else f"failed: {result.detail}"
        if result.notice:
            outcome += f"; {result.notice}"
        incident.steps.append(Step(now, rung.label, reason, outcome, took))
        (log.info if result.ok else log.error)(
            "%s: %s %s in %.1fs: %s",
            self.host,
            rung.label,
            "done" if result.ok else "FAILED",
            took,
            result.detail,
        )
        self._journal.record("step", incident)

    def _safe_probe(self) -> ProbeOutcome:
        try:
            return self._probe()
        except Exception as exc:  # a watchdog must outlive any surprise from one host
            log.exception("%s: probe crashed", self.host)
            return ProbeOutcome(False, f"probe error: {type(exc).__name__}: {exc}")

    def _safe_diagnose(self) -> Diagnosis:
        try:
            return self._diagnose()
        except Exception as exc:
            log.exception("%s: diagnosis crashed", self.host)
            return Diagnosis(ssh_banner=None, error=f"diagnosis error: {type(exc).__name__}")

    def _safe_repair(self, rung: Rung) -> RepairResult:
        try:
            return self._repair(rung)
        except Exception as exc:
            log.exception("%s: %s crashed", self.host, rung.label)
            return RepairResult(False, f"{type(exc).__name__}: {exc}")


def run_watchers(
    watchers: Sequence[HostWatcher],
    interval_s: float,
    stop: threading.Event,
    clock: Clock = time.monotonic,
) -> None:
    """Tick every watcher every `interval_s` in its own thread until `stop` is set.

    One thread per host: a redeploy of one host (tens of seconds) must not pause the probing of
    the others. Ticks keep a fixed rate; a tick that overran starts the next one at once.
    """

    def loop(watcher: HostWatcher) -> None:
        next_at = clock()
        while not stop.is_set():
            watcher.tick()
            next_at = max(next_at + interval_s, clock())
            stop.wait(max(0.0, next_at - clock()))

    threads = [
        threading.Thread(target=loop, args=(w,), name=f"watch-{w.host}", daemon=True)
        for w in watchers
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
