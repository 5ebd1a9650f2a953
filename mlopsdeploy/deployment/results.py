"""What a deploy is asked to do and what it reports: options in, per-host and per-step results out.

Plain data, importable without pyinfra, so callers (CLI, resilience suite, watchdog) can read a
result without loading the deploy machinery.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from mlopsdeploy.config import state_dir
from mlopsdeploy.errors import DeployError

REPO_ROOT = Path(__file__).resolve().parents[2]


def _default_model_dir() -> Path:
    return Path(os.environ.get("MLOPSDEPLOY_MODEL_DIR", REPO_ROOT / "build" / "model"))


@dataclass(frozen=True)
class DeployOptions:
    """Settings shared by every host of one deploy.

    + accept_new_host_key: trust a changed SSH host key (the VM was re-imaged) and record it
    + unconfirmed_host_key: nobody is there to vouch (the watchdog): accept a changed key, but
      as unconfirmed; no secret goes to the host until ``mlopsdeploy trust`` (docs/deploy.md)
    + gate_timeout: seconds a new release gets to answer /readyz and the canaries correctly
    + output: print pyinfra's per-operation log (what ``pyinfra`` itself would print)
    + batches: rolling release, host counts or percents of all hosts in turn, the last one
      repeating (Ansible's ``serial``); empty: every host in one batch (docs/fleet.md)
    + max_fail: failed hosts (count, or percent of all hosts) the rollout tolerates before it
      stops; the hosts not yet started keep their release
    + rollback_failed: a batch that stopped the rollout goes back to its previous release
    """

    model_dir: Path = field(default_factory=_default_model_dir)
    app_dir: Path = REPO_ROOT / "app"
    cache_dir: Path = field(default_factory=lambda: state_dir() / "cache")
    accept_new_host_key: bool = False
    unconfirmed_host_key: bool = False
    gate_timeout: float = 120.0
    output: bool = False
    batches: tuple[int | str, ...] = ()
    max_fail: int | str = 0
    rollback_failed: bool = False


@dataclass
class StepResult:
    """One pyinfra operation on one host: did it change anything, how long it took."""

    name: str
    changed: bool
    ok: bool
    seconds: float


@dataclass
class HostResult:
    host: str
    url: str
    ok: bool = False
    release: str | None = None
    model_version: str | None = None
    steps: list[StepResult] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    error: DeployError | None = None
    batch: int | None = None
    """Which batch of a rolling release (1-based) deployed the host; None: not started."""
    rolled_back: bool = False
    """The batch failed and ``rollback_failed`` put this host back on its previous release."""

    @property
    def outcome(self) -> str:
        """One word for tables: deployed, failed, rolled back, or not started."""
        if self.rolled_back:
            return "rolled back"
        if self.ok:
            return "deployed"
        return "not started" if self.batch is None and self.error is None else "failed"

    @property
    def changed(self) -> list[str]:
        """Names of the steps that changed something (empty: the host was already right)."""
        return [step.name for step in self.steps if step.changed]


@dataclass
class DeployResult:
    hosts: list[HostResult]
    stopped: str | None = None
    """Why a rolling release stopped before its last batch (None: it ran through)."""

    @property
    def retry(self) -> list[str]:
        """Hosts to deploy again: failed, rolled back or never started (pyinfra's failed hosts)."""
        return [h.host for h in self.hosts if not h.ok]

    @property
    def ok(self) -> bool:
        return all(h.ok for h in self.hosts)

    @property
    def changed(self) -> bool:
        return any(h.changed for h in self.hosts)

    def raise_for_errors(self) -> None:
        for result in self.hosts:
            if result.error is not None:
                raise result.error
