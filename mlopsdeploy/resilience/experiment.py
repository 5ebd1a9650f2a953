"""One resilience experiment, Chaos Toolkit style: steady state → inject → recover → verify.

The verdict always comes from probes of the real service (HTTP answers with labels, SSH logins,
the deploy's own report), polled against deadlines. Recovery follows the fault's declared
expectation: systemd first gets its chance to heal alone; otherwise the deploy is re-run the way
a user would, with the recovery options the fault calls for. Usable outside pytest (the watchdog's
tests inject the same faults).
"""

from __future__ import annotations

import contextlib
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx

from mlopsdeploy.faults import Fault, Recovery, Target, WhileActive
from mlopsdeploy.faults.base import has_previous_release
from mlopsdeploy.resilience.load import ClientLoad
from mlopsdeploy.resilience.probes import Answer, AppProbe, poll
from mlopsdeploy.resilience.record import DeployRun, Record, RecoveryPath

#: The prompt sent to the API product; the stand-in quotes it back in its answer.
API_PROMPT = "resilience check"
HOST_KEY_REFUSED = r"(?i)host key"
#: The API check on a host whose new key nobody confirmed (Subject.unconfirmed_host_key).
HELD_BACK = "API product holds its token back until `mlopsdeploy trust` (503 awaiting_host_trust)"


@dataclass(frozen=True)
class DeployRequest:
    """One deploy the experiment asks for.

    + purpose: why it runs (recorded with the run)
    + accept_new_host_key: trust a changed host key (the VM was re-imaged)
    + release_tag: deploy a new release (same app and model, new id) named by this tag, so the
      deploy has something to write; the same tag always means the same release, and no tag
      means the release deployed last
    """

    purpose: str
    accept_new_host_key: bool = False
    release_tag: str | None = None


Deployer = Callable[[DeployRequest], DeployRun]


@dataclass
class Subject:
    """A deployed host as experiments see it: where faults act, how to probe and redeploy it."""

    target: Target
    probe: AppProbe
    deploy: Deployer
    default_key_rejected: Callable[[], bool]
    load_rate: float = 0.0
    """Requests/s of the client load run through each experiment (0: none)."""
    system: str | None = None
    """What the host runs (OS release, Python), read once it is deployed: the same fault can
    recover differently on another release, so each record names it."""
    disposable: bool = False
    """The suite made this host for itself (a testbed VM), so it may deploy a release of its own
    there to give a fault what it acts on; a user's host gets only the deploys recovery needs."""
    unconfirmed_host_key: Callable[[], str | None] = lambda: None
    """The fingerprint of the host key its deploys accepted with nobody confirming it (a real
    target after a re-image), None when someone did: such a host gets no token until
    ``mlopsdeploy trust``, so its API product must say exactly that instead of answering."""


@dataclass(frozen=True)
class Deadlines:
    """+ recover: injection (or undo) to a correct answer; + api: for the API product's answer."""

    recover: float = 300.0
    api: float = 45.0


def expected_path(recovery: Recovery) -> RecoveryPath:
    """The path a fault's declared recovery predicts."""
    active = recovery.while_active
    if active is not None and active.local_serves and not recovery.redeploy:
        return RecoveryPath.NOT_NEEDED
    if recovery.self_heal_seconds > 0:
        return RecoveryPath.SELF_HEALED
    return RecoveryPath.REDEPLOY


def run_experiment(fault: Fault, subject: Subject, deadlines: Deadlines = Deadlines()) -> Record:
    """Inject `fault` into a steady `subject`, let it recover, verify, and return the record.

    Raises NotApplicable before touching anything when the target lacks what the fault needs,
    except a previous release, which a disposable subject is given first (`_previous_release`).
    Never leaves the fault in place: `undo` runs on every path.
    """
    prepared = _previous_release(fault, subject)
    fault.check_applicable(subject.target)
    record = Record(
        fault=fault.name,
        target=subject.target.name,
        started_at=datetime.now(UTC).isoformat(timespec="seconds"),
        expected_path=expected_path(fault.recovery),
        system=subject.system,
    )
    record.deploys.extend(prepared)
    steady = subject.probe.correct()
    if not steady.ok:
        record.error = f"steady state not met before injection: {steady.cause}"
        return record
    recovery = fault.recovery
    active = recovery.while_active
    tag = f"{fault.name}-{uuid.uuid4().hex[:8]}" if active and active.new_release else None
    undone = False
    load = ClientLoad(subject.probe.url, rate=subject.load_rate) if subject.load_rate else None
    try:
        if load is not None:
            load.start()
        injecting = time.monotonic()
        during = fault.load_counts_from_injection
        if load is not None and during:
            load.mark_fault()
        fault.inject(subject.target)
        start = time.monotonic()
        if load is not None and not during:
            load.mark_fault()
        record.inject_seconds = round(start - injecting, 3)
        if active is not None:
            _while_active(subject, active, tag, deadlines, record)
            fault.undo(subject.target)
            undone = True
            start = time.monotonic()
        answer = _recover(subject, recovery, tag, start, deadlines, record)
        if load is not None:
            load.stop()  # recovery verified: what users saw ends here
            seen = load.report()
            record.load = seen.as_dict()
            if fault.lossless:
                record.check(
                    "no request failed after the fault took effect",
                    seen.failed_after_fault == 0,
                    f"{seen.failed_after_fault} failed after it, {seen.failed_in_flight} in flight"
                    f" at it: {seen.failures}",
                )
        if answer.ok:
            record.seconds_to_recover = round(time.monotonic() - start, 3)
            record.model_version = answer.model_version
            _verify(subject, tag, deadlines, record)
        else:
            record.error = f"not recovered: {answer.cause}"
    except Exception as error:
        record.error = f"{type(error).__name__}: {error}"
    finally:
        if load is not None:
            load.stop()
        if not undone:
            try:
                fault.undo(subject.target)
            except Exception as error:
                record.error = record.error or f"undo failed: {error}"
    return record


def restore_steady_state(
    subject: Subject, faults: tuple[Fault, ...], seconds: float = 120.0
) -> None:
    """Bring a host that an earlier experiment left broken back to a correct answer.

    Lifts every fault that can be lifted, then redeploys (accepting a changed host key: the
    only way it changed here is a wipe by an earlier experiment). Raises RuntimeError if the
    host still does not answer correctly.
    """
    if subject.probe.correct().ok:
        return
    for fault in faults:
        if fault.not_applicable(subject.target) is None:
            with contextlib.suppress(Exception):
                fault.undo(subject.target)
    run = subject.deploy(DeployRequest("restore steady state", accept_new_host_key=True))
    answer = poll(subject.probe.correct, seconds)
    if not answer.ok:
        raise RuntimeError(
            f"{subject.target.name} does not recover its steady state: {answer.cause}"
            f" (restoring deploy: {run.error or 'ok'})"
        )


def _previous_release(fault: Fault, subject: Subject) -> list[DeployRun]:
    """Deploy a new release on a disposable subject that has no previous one, for a fault that
    acts on it (`rollback`); return that deploy, if one ran.

    Whether an earlier experiment on the same host had deployed a new release depended on which
    experiments pytest-xdist gave that host before, so the fault ran in one suite run and skipped
    itself in the next. A user's host is left as it is: without a previous release the fault
    skips there. Raises RuntimeError when that deploy fails: the fault was not tried, and skipping
    it would hide that.
    """
    if not (fault.needs_previous_release and subject.disposable):
        return []
    if has_previous_release(subject.target):
        return []
    tag = f"{fault.name}-from-{uuid.uuid4().hex[:8]}"
    run = subject.deploy(DeployRequest("a release to go back from", release_tag=tag))
    if not run.ok:
        raise RuntimeError(
            f"{subject.target.name}: the new release {fault.name} goes back from failed to"
            f" deploy: {run.error}"
        )
    return [run]


def _deploy(subject: Subject, request: DeployRequest, record: Record) -> DeployRun:
    run = subject.deploy(request)
    record.deploys.append(run)
    return run


def _while_active(
    subject: Subject, active: WhileActive, tag: str | None, deadlines: Deadlines, record: Record
) -> None:
    """Check what must hold while the fault stays: local product, API error, deploy refusal."""
    answer = subject.probe.correct()
    record.outage_seen = not answer.ok
    if active.local_serves:
        record.check("local product serves while the fault lasts", answer.ok, answer.cause or "")
    if active.api_error is not None:
        response = subject.probe.generate(API_PROMPT, timeout=deadlines.api)
        record.check(
            f"API product fails clearly ({active.api_error})",
            *_api_error(response, active.api_error),
        )
    if active.deploy_error is not None:
        run = _deploy(
            subject, DeployRequest("refused while the fault lasts", release_tag=tag), record
        )
        refused = not run.ok and re.search(active.deploy_error, run.error or "") is not None
        record.check("deploy refused with a clear error", refused, run.error or "deploy succeeded")
        if active.local_serves:
            answer = subject.probe.correct()
            record.check(
                "old release still serving after the refusal", answer.ok, answer.cause or ""
            )


def _api_error(response: httpx.Response | str, kind: str) -> tuple[bool, str]:
    if isinstance(response, str):
        return False, f"no HTTP answer: {response}"
    try:
        body = response.json()
    except ValueError:
        body = {}
    ok = (
        response.status_code in (502, 503, 504)
        and isinstance(body, dict)
        and body.get("error") == kind
        and bool(body.get("detail"))
    )
    return ok, f"{response.status_code} {response.text[:200]}"


def _recover(
    subject: Subject,
    recovery: Recovery,
    tag: str | None,
    start: float,
    deadlines: Deadlines,
    record: Record,
) -> Answer:
    """Give systemd its window, then redeploy if the fault calls for it; set the path taken."""

    def outage(_: Answer) -> None:
        record.outage_seen = True

    deadline = start + deadlines.recover
    window = min(recovery.self_heal_seconds, deadline - time.monotonic())
    answer = subject.probe.correct()
    if not answer.ok:
        outage(answer)
    if not answer.ok and window > 0:
        answer = poll(subject.probe.correct, window, on_failure=outage)
    if answer.ok and not (recovery.redeploy and (tag or recovery.hidden)):
        record.recovery_path = (
            RecoveryPath.SELF_HEALED if record.outage_seen else RecoveryPath.NOT_NEEDED
        )
        return answer
    if not recovery.redeploy:
        return Answer(f"systemd did not heal it within {window:g}s: {answer.cause}")
    if recovery.accept_new_host_key:
        refused = _deploy(subject, DeployRequest("refused: changed host key"), record)
        record.check(
            "changed host key refused without the recovery option",
            not refused.ok and re.search(HOST_KEY_REFUSED, refused.error or "") is not None,
            refused.error or "deploy succeeded",
        )
    request = DeployRequest("recover", recovery.accept_new_host_key, release_tag=tag)
    run = _deploy(subject, request, record)
    if not run.ok:
        return Answer(f"recovery deploy failed: {run.error}")
    answer = poll(subject.probe.correct, deadline - time.monotonic(), on_failure=outage)
    if not answer.ok:
        return Answer(f"no correct answer {deadlines.recover:g}s after the fault: {answer.cause}")
    record.recovery_path = RecoveryPath.REDEPLOY
    return answer


def _verify(subject: Subject, tag: str | None, deadlines: Deadlines, record: Record) -> None:
    """After recovery: labels, the API product, SSH lockdown, and a deploy with nothing to do.

    The API product answers, unless the host's key is unconfirmed: then it must refuse, naming
    the key and ``mlopsdeploy trust`` (the deploy held the token back).

    An app with its own spec has no API route the suite knows: its spec's checks (which passed
    to get here) are what it declared working means.
    """
    spec = subject.probe.spec
    unconfirmed = record.unconfirmed_host_key = subject.unconfirmed_host_key()
    if spec is None:
        record.check(
            "readyz 200 and every probe sentence labelled right",
            True,
            f"{len(subject.probe.sentences)} sentences",
        )
        if unconfirmed is None:
            api = poll(lambda: _api_answers(subject.probe), deadlines.api, interval=0.5)
            record.check("API product answers", api.ok, api.cause or "")
        else:
            held = poll(
                lambda: _api_held_back(subject.probe, unconfirmed), deadlines.api, interval=0.5
            )
            record.check(HELD_BACK, held.ok, held.cause or f"unconfirmed host key {unconfirmed}")
    else:
        names = ", ".join(check.name for check in spec.checks)
        record.check("every check of the app's spec answered right", True, names)
    record.check("shared default key rejected", subject.default_key_rejected())
    again = _deploy(subject, DeployRequest("idempotence", release_tag=tag), record)
    record.check(
        "a further deploy changes nothing",
        again.ok and not again.changed,
        again.error or ", ".join(again.changed),
    )


def _api_answers(probe: AppProbe) -> Answer:
    response = probe.generate(API_PROMPT, timeout=30.0)
    if isinstance(response, str):
        return Answer(response)
    if response.status_code != 200:
        return Answer(f"/api/generate answered {response.status_code}: {response.text[:200]}")
    text = response.json().get("text", "")
    return Answer(None if API_PROMPT in text else f"answer does not quote the prompt: {text!r}")


def _api_held_back(probe: AppProbe, fingerprint: str) -> Answer:
    """503 ``awaiting_host_trust`` naming `fingerprint` and ``mlopsdeploy trust``: what a host
    whose key nobody confirmed must answer. A completion would mean the token reached it."""
    response = probe.generate(API_PROMPT, timeout=30.0)
    if isinstance(response, str):
        return Answer(response)
    try:
        body = response.json()
    except ValueError:
        body = None
    detail = str(body.get("detail", "")) if isinstance(body, dict) else ""
    held = (
        response.status_code == 503
        and isinstance(body, dict)
        and body.get("error") == "awaiting_host_trust"
        and fingerprint in detail
        and "mlopsdeploy trust" in detail
    )
    return Answer(
        None if held else f"/api/generate answered {response.status_code}: {response.text[:200]}"
    )
