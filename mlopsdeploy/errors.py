"""Errors a deploy reports: always the host and the cause, with evidence when there is some."""

from __future__ import annotations


class DeployError(RuntimeError):
    """A deploy step failed on one host.

    ``journal`` carries the last lines of the service's journal when the failure was the app's, so
    the user sees why without logging in.
    """

    def __init__(self, host: str, cause: str, journal: list[str] | None = None) -> None:
        self.host = host
        self.cause = cause
        self.journal = journal or []
        message = f"{host}: {cause}"
        if self.journal:
            message += "\n  last journal lines:\n    " + "\n    ".join(self.journal)
        super().__init__(message)


class AccessError(DeployError):
    """The host cannot be reached or logged into (unreachable, wrong key, lockdown failed)."""


class HostKeyChangedError(AccessError):
    """The host presents a different SSH host key than the one recorded (wiped VM or attack)."""
