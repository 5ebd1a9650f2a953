"""Shell command lines that run on the host, built in one place for operations, facts and faults.

Each is a short string for pyinfra (or an SSH exec) to run; nothing here connects anywhere.
"""

from __future__ import annotations

import shlex

# A non-interactive ssh session does not always have XDG_RUNTIME_DIR set, and without it
# `systemctl --user` cannot find the user's manager and answers as if no unit were running.
USER_RUNTIME_DIR = 'XDG_RUNTIME_DIR="/run/user/$(id -u)"'
_USER_SYSTEMCTL = f"{USER_RUNTIME_DIR} systemctl --user"
_SYSTEM_SYSTEMCTL = "sudo -n systemctl"


def systemctl(scope: str, *args: str) -> str:
    """``systemctl`` for the app's manager: the user's own (``user``) or root's (``system``).

    + scope: ``user`` or ``system``, as in ``HostConfig.service_scope``
    + args: appended shell-quoted; without them the caller appends its own words

    >>> systemctl("user", "is-active", "mlopsdeploy.service")
    'XDG_RUNTIME_DIR="/run/user/$(id -u)" systemctl --user is-active mlopsdeploy.service'
    """
    prefix = _SYSTEM_SYSTEMCTL if scope == "system" else _USER_SYSTEMCTL
    return " ".join([prefix, *(shlex.quote(a) for a in args)])


def unit_quote(value: str) -> str:
    """``value`` as one double-quoted word of a systemd unit setting (e.g. ``Environment=``).

    systemd unquotes backslash escapes inside the quotes and expands ``%`` specifiers, so a
    value holding ``"``, ``\\`` or ``%`` (a path, an API URL) would otherwise be cut or changed.

    >>> unit_quote('APP_API_MODEL=https://x/y?a=1%20b')
    '"APP_API_MODEL=https://x/y?a=1%%20b"'
    """
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    escaped = escaped.replace("%", "%%")
    return f'"{escaped}"'


def swap_link(base: str, link: str, release_id: str) -> str:
    """Point ``base/link`` at ``releases/<release_id>`` with an atomic rename (never missing)."""
    b = shlex.quote(base)
    target = shlex.quote(f"releases/{release_id}")
    return f"ln -sfn {target} {b}/.{link}.new && mv -T {b}/.{link}.new {b}/{link}"
