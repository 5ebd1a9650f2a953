"""The journal of one experiment: what was broken, how it came back, how long it took, what held.

Records are plain data so they cross process boundaries unchanged (pytest-xdist workers send
them to the controller as dicts) and land in the JSON report as they are.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any


class RecoveryPath(StrEnum):
    """How the host got back to a correct answer."""

    SELF_HEALED = "self-healed"
    REDEPLOY = "redeploy"
    NOT_NEEDED = "no outage"
    NOT_RECOVERED = "not recovered"


@dataclass
class Check:
    """One verification after recovery (or while the fault is active)."""

    name: str
    ok: bool
    detail: str = ""


@dataclass
class DeployRun:
    """One run of the deploy during an experiment, and why it was run.

    + changed: the deploy steps that changed something, in order
    + step_seconds: how long each of those took (where recovery time goes)
    + timings: the deploy's phases (access, bootstrap, connect, ops, verify, total)
    """

    purpose: str
    ok: bool
    seconds: float
    changed: list[str] = field(default_factory=list)
    step_seconds: dict[str, float] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    error: str | None = None


@dataclass
class Record:
    """One fault injected into one target, from steady state to verdict.

    + seconds_to_recover: from the moment the fault is in effect (the injection returned; for a
      fault held in place, the moment it is lifted) to the first correct answer (readyz 200 and
      every probe sentence labelled right); None when that never came
    + inject_seconds: how long the injection itself took (a testbed wipe re-images the VM)
    + outage_seen: whether any probe failed in between (a fault the app rode out has none)
    + expected_path: what the fault's declared recovery predicts; a different path is a finding
    + load: what the client load saw from steady state to recovery (`LoadReport.as_dict()`):
      failed requests after the fault / in flight at it, longest gap, p99 latency
    + system: the target's OS release and Python (``Debian GNU/Linux 13 (trixie), Python
      3.13.5``), None when it was not read
    + unconfirmed_host_key: the fingerprint of the host key nobody had confirmed when the host
      was verified (a real target after a re-image): its deploys held the token back, so the
      API product was expected to refuse until ``mlopsdeploy trust``; None: the key was confirmed
    """

    fault: str
    target: str
    started_at: str
    recovery_path: RecoveryPath = RecoveryPath.NOT_RECOVERED
    expected_path: RecoveryPath | None = None
    seconds_to_recover: float | None = None
    inject_seconds: float = 0.0
    outage_seen: bool = False
    deploys: list[DeployRun] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)
    model_version: str | None = None
    error: str | None = None
    load: dict[str, Any] | None = None
    system: str | None = None
    unconfirmed_host_key: str | None = None

    @property
    def verified(self) -> bool:
        """Recovered, every check passed, and nothing went wrong on the way."""
        return (
            self.error is None
            and self.recovery_path is not RecoveryPath.NOT_RECOVERED
            and all(check.ok for check in self.checks)
        )

    @property
    def recovery_deploy(self) -> DeployRun | None:
        """The deploy run that did the recovery, when the path was a redeploy."""
        return next((run for run in self.deploys if run.purpose == "recover"), None)

    def check(self, name: str, ok: bool, detail: str = "") -> bool:
        self.checks.append(Check(name, ok, detail))
        return ok

    def to_dict(self) -> dict[str, Any]:
        """JSON types only (enums become their strings): xdist's wire format takes no others."""
        data: dict[str, Any] = json.loads(json.dumps(asdict(self)))
        return {**data, "verified": self.verified}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Record:
        values = {key: value for key, value in data.items() if key != "verified"}
        values["recovery_path"] = RecoveryPath(values["recovery_path"])
        if values.get("expected_path") is not None:
            values["expected_path"] = RecoveryPath(values["expected_path"])
        values["deploys"] = [DeployRun(**run) for run in values.get("deploys", [])]
        values["checks"] = [Check(**check) for check in values.get("checks", [])]
        return cls(**values)
