"""The escalation ladder: from a diagnosis to the smallest repair that can fix it.

Today's recover.sh restarted first and redeployed second, whatever had happened. Here the
diagnosis picks the first rung (a wiped VM goes straight to re-provisioning, a frozen process to
a restart, a crash systemd is already restarting to no action at all), and every repair that did
not end the incident moves the next one a rung up. The function is pure so every branch is
unit-tested without a host.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum, StrEnum

from mlopsdeploy.watchdog.diagnosis import Diagnosis, HostKey, LoginKey

_AGE_SLACK_S = 1.0
"""ps reports a process's age in whole seconds, and the host's clock is not ours."""


class Rung(IntEnum):
    """Repairs, cheapest first. The values order them; the names go into the journal."""

    RESTART = 1
    REDEPLOY = 2
    REPROVISION = 3

    @property
    def label(self) -> str:
        return self.name.lower()


class HostKeyPolicy(StrEnum):
    """What to do when the host presents a host key other than the recorded one.

    accept-pristine: accept it only when the host also looks freshly issued - it rejects our own
    key and accepts the shared default key - which is what a wiped course VM looks like, and
    re-provision it *without secrets*: an impostor looks just the same, so the key stays
    unconfirmed (and the token home) until a person runs ``mlopsdeploy trust HOST``, unless the
    host opted in with ``push_secrets_on_new_host_key``.
    refuse: never; give up and let a human check (``mlopsdeploy trust HOST``).
    """

    ACCEPT_PRISTINE = "accept-pristine"
    REFUSE = "refuse"


class Verdict(StrEnum):
    WAIT = "wait"
    ACT = "act"
    GIVE_UP = "give_up"


@dataclass(frozen=True)
class Decision:
    verdict: Verdict
    reason: str
    rung: Rung | None = None
    backoff: bool = False
    """For WAIT: look again only after an exponentially growing delay (an unreachable host)."""
    look_again_at: float | None = None
    """For WAIT: nothing can change the decision before then (cooldown, confirm window)."""


@dataclass(frozen=True)
class Situation:
    """What the ladder needs to know about the incident besides the diagnosis."""

    now: float
    confirm_until: float
    """A running service that merely answers badly is left alone until then: on a busy VM a
    slow answer or two is not worth a restart (a frozen or stopped one is repaired at once)."""
    fault_since: float
    """The last passing probe: a main process started after it is systemd's (or our) restart."""
    heal_until: float
    """Until then a service systemd is restarting, or a freshly started one, gets time to heal."""
    next_action_at: float
    """Cooldown after a repair, or backoff after a failed one."""
    last_rung: Rung | None
    """The last repair tried in this incident: it did not help, so go at least one rung up."""
    budget_left: int
    """Repairs still allowed within the hourly limit."""


def decide(diagnosis: Diagnosis, situation: Situation, policy: HostKeyPolicy) -> Decision:
    """Choose between waiting, repairing (and with what) and giving up."""
    first = _first_rung(diagnosis, situation, policy)
    if isinstance(first, Decision):
        return first
    top = Rung.REPROVISION if diagnosis.host_key == HostKey.CHANGED else Rung.REDEPLOY
    rung = first
    if situation.last_rung is not None:
        rung = max(first, min(Rung(situation.last_rung + 1), top))
    if situation.now < situation.next_action_at:
        wait_s = situation.next_action_at - situation.now
        return Decision(
            Verdict.WAIT,
            f"cooling down {wait_s:.0f}s before {rung.label}",
            rung,
            look_again_at=situation.next_action_at,
        )
    if situation.budget_left <= 0:
        return Decision(Verdict.GIVE_UP, f"hourly repair limit reached; would {rung.label}", rung)
    return Decision(Verdict.ACT, _why(rung, diagnosis), rung)


def _first_rung(
    diagnosis: Diagnosis, situation: Situation, policy: HostKeyPolicy
) -> Rung | Decision:
    if not diagnosis.reachable:
        return Decision(Verdict.WAIT, "host unreachable: waiting for it", backoff=True)
    if diagnosis.host_key == HostKey.CHANGED:
        if policy == HostKeyPolicy.REFUSE:
            return _hopeless("host key changed and the policy refuses new keys", situation)
        if diagnosis.login != LoginKey.DEFAULT:
            return _hopeless(
                "host key changed but the host does not look freshly issued "
                f"(login: {diagnosis.login}); not accepting it",
                situation,
            )
        return Rung.REPROVISION
    if diagnosis.login == LoginKey.NONE:
        return _hopeless("neither our key nor the default key is accepted", situation)
    if diagnosis.login == LoginKey.DEFAULT:
        return Rung.REDEPLOY
    service = diagnosis.service
    if service is None:
        return Decision(Verdict.WAIT, f"service state unknown ({diagnosis.error})", backoff=True)
    if service.missing or service.manager_down:
        # Only a deploy puts back a unit file or the user's service manager (killed with
        # every process of the user); it is idempotent when the rest is fine.
        return Rung.REDEPLOY
    if service.stopped_process or service.down:
        return Rung.RESTART
    if service.active_state == "deactivating":
        return Decision(Verdict.WAIT, "the service is stopping; looking again")
    restarted = (
        service.process_age_s is not None
        and situation.now - service.process_age_s >= situation.fault_since - _AGE_SLACK_S
    )
    if situation.now < situation.heal_until:
        if service.restarting:
            return _healing("no action needed: systemd is restarting the service")
        if restarted:
            return _healing("no action needed: the service restarted and is starting")
    if situation.now < situation.confirm_until:
        return Decision(
            Verdict.WAIT,
            "service looks up; confirming with more probes",
            look_again_at=situation.confirm_until,
        )
    return Rung.RESTART


def _healing(reason: str) -> Decision:
    """Probes will see the recovery; the diagnosis only needs to catch a heal that stalls."""
    return Decision(Verdict.WAIT, reason, backoff=True)


def _hopeless(reason: str, situation: Situation) -> Decision:
    """Nothing the watchdog can do; but a host caught mid-change (a home being restored, a VM
    rebooting into its new image) looks like this for a while, so keep looking during the
    heal grace first."""
    if situation.now < situation.heal_until:
        return Decision(Verdict.WAIT, f"{reason}; looking again", backoff=True)
    return Decision(Verdict.GIVE_UP, reason)


def _why(rung: Rung, diagnosis: Diagnosis) -> str:
    return f"{rung.label}: {diagnosis.summary()}"
