"""SSH access operations: authorize the user's own key, lock the shared default key out."""

from __future__ import annotations

import shlex

from pyinfra import host
from pyinfra.api import operation

from mlopsdeploy.deployment.facts.access import AuthorizedKeys


def key_blob(line: str) -> str:
    """The base64 blob that identifies a key in an authorized_keys line, whatever its options."""
    parts = line.split()
    return next((p for p in parts if p.startswith("AAAA")), "")


@operation()
def authorized_key(key_line: str, present: bool = True):
    """Add or remove one key in the connecting user's ``~/.ssh/authorized_keys``.

    + key_line: ``<type> <base64> [comment]``; matched by its base64 blob only
    + present: whether the key should be authorized

    **Example:**

    .. code:: python

        authorized_key(name="Lock out the default key", key_line=default_pub, present=False)
    """
    blob = key_blob(key_line)
    if not blob:
        raise ValueError("not a public key line")
    has_key = any(blob in line.split() for line in host.get_fact(AuthorizedKeys))
    if present and not has_key:
        yield (
            "umask 077 && mkdir -p ~/.ssh && chmod 700 ~/.ssh && "
            f"printf '%s\\n' {shlex.quote(key_line)} >> ~/.ssh/authorized_keys"
        )
    elif not present and has_key:
        yield (
            f"umask 077 && {{ grep -vF -- {shlex.quote(blob)} ~/.ssh/authorized_keys || true; }} "
            "> ~/.ssh/authorized_keys.new && mv ~/.ssh/authorized_keys.new ~/.ssh/authorized_keys"
        )
