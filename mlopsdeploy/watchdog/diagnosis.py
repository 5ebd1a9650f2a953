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


class HostKey(StrEnum):
    """How the host key the server presented compares with the one recorded for it."""

    RECORDED = "recorded"
    CHANGED = "changed"
    UNRECORDED = "unrecorded"


class LoginKey(StrEnum):
    """Which private key the host accepts; the user's own key is always tried first."""

    OWN = "own"
    DEFAULT = "default"
    NONE = "none"


@dataclass(frozen=True)
class ServiceState:
    """The app's systemd unit and its main process, as `systemctl show` and `ps` report them.

    `process_state` is the first letter of ps's STAT column: "T" means the process was stopped
    by a signal (SIGSTOP) - it exists, holds its port, and will never answer by itself.
    """

    load_state: str
    active_state: str
    sub_state: str
    main_pid: int = 0
    process_state: str = ""
    process_age_s: float | None = None
    manager_down: bool = False
    """systemctl could not reach the service manager (user@UID.service killed or stopped)."""

    @property
    def missing(self) -> bool:
        """The unit file is gone (a wiped home, a deleted unit): only a deploy brings it back."""
        return self.load_state == "not-found"

    @property
    def restarting(self) -> bool:
        """systemd is already bringing the service back (Restart=always after a crash)."""
        return self.active_state in {"activating", "reloading"} or self.sub_state == "auto-restart"

    @property
    def stopped_process(self) -> bool:
        return self.main_pid > 0 and self.process_state == "T"

    @property
    def down(self) -> bool:
        """Not running and nobody is starting it: stopped by hand, or failed for good."""
        return self.active_state in {"inactive", "failed"} and not self.restarting

    def summary(self) -> str:
        if self.manager_down:
            return "service manager not running"
        text = f"{self.active_state}/{self.sub_state}"
        if self.main_pid:
            text += f", pid {self.main_pid} state {self.process_state or '?'}"
            if self.process_age_s is not None:
                text += f" up {self.process_age_s:.0f}s"
        return text


@dataclass(frozen=True)
class Diagnosis:
    """Findings from outside, in the order they were gathered; later fields are None when an
    earlier step already failed (no banner → no host key → no login → no service state)."""

    ssh_banner: str | None
    host_key: HostKey | None = None
    login: LoginKey | None = None
    service: ServiceState | None = None
    error: str | None = None

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
        if self.service is not None:
            parts.append("unit missing" if self.service.missing else self.service.summary())
        if self.error:
            parts.append(self.error)
        return "; ".join(parts)

    def to_dict(self) -> dict[str, object]:
        data = asdict(self)
        data["summary"] = self.summary()
        return data
