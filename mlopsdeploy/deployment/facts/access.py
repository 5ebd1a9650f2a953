"""Facts about SSH access on the host."""

from __future__ import annotations

from pyinfra.api import FactBase


class AuthorizedKeys(FactBase[list[str]]):
    """The key lines of the connecting user's ``~/.ssh/authorized_keys`` ([] when it is missing).

    The lockdown step compares key *blobs* against these lines, so a key is recognised whatever
    its comment or options.
    """

    def command(self) -> str:
        return "cat ~/.ssh/authorized_keys 2>/dev/null; true"

    @staticmethod
    def default() -> list[str]:
        return []

    def process(self, output: list[str]) -> list[str]:
        return [line for line in output if line.strip() and not line.lstrip().startswith("#")]
