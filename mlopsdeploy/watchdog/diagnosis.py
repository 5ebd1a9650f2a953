"""What the watchdog found out about a host whose probe failed.

A failed readiness probe only says *that* something is wrong. Which repair is the right one
depends on *what* is wrong, so after each failed probe the watchdog looks from outside, step by
step, the way a person at a terminal would: does SSH answer at all, is the host key the one we
recorded, which key lets us in, and is the service running, restarting, stopped or frozen.
This module holds those findings as plain data; `mlopsdeploy.watchdog.ssh_check` gathers them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from enum import StrEnum

from mlopsdeploy.deployment.control.host_keys import HostKey
from mlopsdeploy.deployment.facts.service import ServiceState


class LoginKey(StrEnum):
    """Which private key the host accepts; the user's own key is always tried first."""

    OWN = "own"
    DEFAULT = "default"
    NONE = "none"


@dataclass(frozen=True)
class Diagnosis:
    """Findings from outside, in the order they were gathered; later fields are None when an
    earlier step already failed (no banner → no host key → no login → no service state)."""

    ssh_banner: str | None
    host_key: HostKey | None = None
    login: LoginKey | None = None
    service: ServiceState | None = None
    error: str | None = None
    workers: tuple[ServiceState, ...] = ()
    """Every worker on the app's socket; `service` is the first one not serving (else the first)."""

    @property
    def reachable(self) -> bool:
        return self.ssh_banner is not None

    def summary(self) -> str:
        """One line for logs, the journal and alerts."""
        if not self.reachable:
            return f"ssh: no answer ({self.error or 'no banner'})"
        parts = [f"ssh: {self.ssh_banner}"]
        if self.host_key is not None:
            parts.append(f"host key {self.host_key}")
        if self.login is not None:
            parts.append(f"login with {self.login} key" if self.login != "none" else "no key")
        if self.workers:
            up = sum(worker.serving for worker in self.workers)
            rss = "/".join(
                "-" if w.rss_kb is None or not w.main_pid else str(w.rss_kb // 1024)
                for w in self.workers
            )
            parts.append(f"workers up {up}/{len(self.workers)} (rss MB {rss})")
        if self.service is not None:
            parts.append("unit missing" if self.service.missing else self.service.summary())
        if self.error:
            parts.append(self.error)
        return "; ".join(parts)

    def to_dict(self) -> dict[str, object]:
        data = asdict(self)
        data["summary"] = self.summary()
        return data
