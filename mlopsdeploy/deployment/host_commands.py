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


def point_link(base: str, link: str, target: str) -> str:
    """Point ``base/link`` at ``target`` with an atomic rename (``target`` is the link's text,
    so relative to the link's own directory).

    The link is never missing, not even for an instant: a process starting meanwhile finds
    either the old target or the new one.
    """
    b = shlex.quote(base)
    new = shlex.quote(f".{link}.new".replace("/", "_"))
    return f"ln -sfn {shlex.quote(target)} {b}/{new} && mv -T {b}/{new} {b}/{shlex.quote(link)}"


def swap_link(base: str, link: str, release_id: str) -> str:
    """Point ``base/link`` at ``releases/<release_id>`` with an atomic rename (never missing)."""
    return point_link(base, link, f"releases/{release_id}")


# One lock per host, on the host, under the deploy root: deploys, rollbacks and the watchdog's
# restarts from any control machine exclude each other. flock(1) holds it only while its process
# lives, so a deploy killed anywhere (its SSH session ends, the holder exits) leaves no lock.
HOST_LOCK = ".deploy.lock"
HOST_LOCK_OWNER = ".deploy.owner"


def hold_host_lock(base: str, scope: str, owner: str, wait_seconds: int) -> str:
    """Take the host lock (waiting up to ``wait_seconds``) and hold it until stdin closes.

    Prints ``locked`` once held, after recording ``owner`` and the time beside the lock; or
    ``busy <the holder's owner line>`` when the wait ran out. ``scope``: as in ``systemctl``
    (a system deploy root under /opt needs sudo to be created).
    """
    b = shlex.quote(base)
    make = f'sudo -n install -d -m 700 -o "$(id -un)" {b}' if scope == "system" else f"mkdir -p {b}"
    return (
        f"{{ [ -d {b} ] || {make}; }} && cd {b} && exec 9>>{HOST_LOCK} && "
        f"if ! flock -w {int(wait_seconds)} 9; then "
        f'echo "busy $(cat {HOST_LOCK_OWNER} 2>/dev/null)"; exit 75; fi; '
        f"printf '%s since %s\\n' {shlex.quote(owner)} \"$(date -u +%Y-%m-%dT%H:%M:%SZ)\" "
        f"> {HOST_LOCK_OWNER}; echo locked; exec cat >/dev/null"
    )


def under_host_lock(base: str, command: str, wait_seconds: int) -> str:
    """``command`` run while holding the host lock (fails after ``wait_seconds`` of waiting)."""
    lock = shlex.quote(f"{base}/{HOST_LOCK}")
    return f"flock -w {int(wait_seconds)} {lock} sh -c {shlex.quote(command)}"
