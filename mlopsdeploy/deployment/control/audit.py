"""``mlopsdeploy audit``: would your own VMs resist what other teams try on them? (control side)

Every check *tries* what an attacker would (the shared default key, a password, root) or looks
at the host as it is (ssh-audit, file modes, listening sockets); none trusts a config file's
claims. Hosts are only talked to when they present the recorded host key, so the audit never
hands even a throwaway password to an impostor.
"""

from __future__ import annotations

import secrets
import shlex
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import httpx
import paramiko

from mlopsdeploy.config import HostConfig
from mlopsdeploy.deployment.control import ssh_audit
from mlopsdeploy.deployment.control.host_keys import HostKey, compare_host_key, connect_transport
from mlopsdeploy.deployment.control.ssh_login import key_logs_in, try_key
from mlopsdeploy.deployment.operations.service import env_file_path
from mlopsdeploy.errors import DeployError

# Under the home, skip what the deploy installs in bulk (hundreds of MB, no secrets) and caches
# (``venv``: a plain dir on hosts not deployed since venvs went per lock; a link afterwards).
_SKIPPED_DIRS = (
    "mlopsdeploy/venv",
    "mlopsdeploy/venvs",
    "mlopsdeploy/wheelhouse",
    "mlopsdeploy/releases",
    ".cache",
)
_SECRET_NAMES = (
    "app.env",
    "*token*",
    "id_*",
    "*.pem",
    "*.key",
    ".netrc",
    ".git-credentials",
    "*.env",
)


@dataclass(frozen=True)
class Check:
    """One row of the audit: what was tried, whether the host resisted, and the evidence."""

    name: str
    ok: bool
    detail: str


@dataclass
class HostAudit:
    host: str
    checks: list[Check] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(check.ok for check in self.checks)

    @property
    def failed(self) -> list[str]:
        return [check.name for check in self.checks if not check.ok]


# (ok, evidence) of one check
Verdict = tuple[bool, str]


class AuditError(RuntimeError):
    """A check could not be carried out (unreachable host, unknown host key, tool missing)."""


@contextmanager
def _transport(cfg: HostConfig) -> Iterator[paramiko.Transport]:
    """A transport to a host that presents the recorded host key (else AuditError)."""
    try:
        transport = connect_transport(cfg)
    except ConnectionError as e:
        raise AuditError(f"cannot reach {e}") from e
    try:
        if compare_host_key(cfg, transport.get_remote_server_key()) != HostKey.RECORDED:
            raise AuditError(
                f"host key is not the one recorded in {cfg.known_hosts}; "
                f"run: mlopsdeploy trust {cfg.name}"
            )
        yield transport
    finally:
        transport.close()


def run_as_user(cfg: HostConfig, command: str, stdin: str | None = None) -> tuple[int, str]:
    """Exit code and output of ``command`` run as the user with the own key; input via stdin."""
    with _transport(cfg) as transport:
        if not try_key(transport, cfg.user, cfg.own_key):
            raise AuditError(f"your key {cfg.own_key} does not log in")
        channel = transport.open_session()
        channel.exec_command(command)
        if stdin is not None:
            channel.sendall(stdin.encode())
        channel.shutdown_write()
        output = channel.makefile("r").read().decode(errors="replace")
        return channel.recv_exit_status(), output


def password_methods(cfg: HostConfig, user: str) -> list[str]:
    """The password-like methods sshd lets ``user`` *try*, found by trying a random password.

    A server that accepts the attempt (and rejects the wrong password) offers it; one that
    answers "method not allowed" does not. keyboard-interactive is tried the same way.
    """
    offered = []
    guess = secrets.token_urlsafe(16)

    def answers(_title: str, _instructions: str, prompts: list[Any]) -> list[str]:
        return [guess] * len(prompts)

    for method in ("password", "keyboard-interactive"):
        with _transport(cfg) as transport:
            try:
                if method == "password":
                    transport.auth_password(user, guess, fallback=False)
                else:
                    transport.auth_interactive(user, answers)
                offered.append(method)  # a random password logged in: worse still
            except paramiko.BadAuthenticationType:
                continue
            except paramiko.AuthenticationException:
                offered.append(method)
    return offered


def _default_key_rejected(cfg: HostConfig) -> Verdict:
    if cfg.default_key is None:
        return (True, "no default_key configured to try")
    if key_logs_in(cfg, cfg.default_key):
        return (False, f"{cfg.default_key} logs in as {cfg.user}")
    return (True, f"{cfg.default_key} refused for {cfg.user}")


def _password_refused(cfg: HostConfig) -> Verdict:
    offered = password_methods(cfg, cfg.user)
    if offered:
        return (False, f"sshd accepts {' and '.join(offered)} tries")
    return (True, "password and keyboard-interactive not offered")


def _root_refused(cfg: HostConfig) -> Verdict:
    root = replace(cfg, user="root")
    keys = [cfg.own_key, *([cfg.default_key] if cfg.default_key else [])]
    accepted = [str(key) for key in keys if key_logs_in(root, key)]
    offered = password_methods(cfg, "root")
    if accepted or offered:
        why = [f"{key} logs in as root" for key in accepted] + [
            f"root may try {m}" for m in offered
        ]
        return (False, "; ".join(why))
    return (True, "own and default key refused, no password tries")


def _ssh_audit_clean(cfg: HostConfig) -> Verdict:
    try:
        found = ssh_audit.audit(cfg.address, cfg.ssh_port)
    except RuntimeError as e:
        return (False, str(e))
    if found:
        return (False, f"{len(found)} failures: {'; '.join(found)}")
    return (True, "no failures")


def _token_file_private(cfg: HostConfig) -> Verdict:
    path = env_file_path(cfg)
    code, out = run_as_user(cfg, f"stat -c '%a %U' {shlex.quote(path)}")
    if code != 0:
        return (False, f"{path} is missing")
    mode, _, owner = out.strip().partition(" ")
    if (mode, owner) != ("600", cfg.user):
        return (False, f"{path} is {mode} owned by {owner}")
    return (True, f"{path} 600 {owner}")


def _no_readable_secrets(cfg: HostConfig) -> Verdict:
    """World-readable files under the home that are named like secrets or hold the token.

    The token goes to the host on stdin into a 0600 temp file for ``grep -f``, never into argv.
    """
    prune = " -o ".join(f"-path ~/{shlex.quote(d)}" for d in _SKIPPED_DIRS)
    names = " -o ".join(f"-name {shlex.quote(n)}" for n in _SECRET_NAMES)
    readable = f"find ~ -xdev \\( {prune} \\) -prune -o -type f -perm -o=r"
    token = cfg.read_token()
    command = f"{readable} \\( {names} \\) -print"
    if token:
        holders = f'{readable} -print0 | xargs -0r grep -lsF -f "$t"'
        command = f't=$(umask 077; mktemp) && cat > "$t" && {{ {command}; {holders}; rm -f "$t"; }}'
    _, out = run_as_user(cfg, command, stdin=f"{token}\n" if token else "")
    found = [line for line in out.splitlines() if line.strip()]
    if found:
        return (False, ", ".join(found))
    return (True, "token found in no world-readable file" if token else "none found")


def _app_port_only(cfg: HostConfig) -> Verdict:
    try:
        answer = httpx.get(f"{cfg.url}/livez", timeout=10)
    except httpx.HTTPError as e:
        return (False, f"{cfg.url}/livez: {e}")
    if answer.status_code != 200:
        return (False, f"{cfg.url}/livez answered {answer.status_code}")
    # ss names the process only for sockets the user's own processes hold: the app's workers
    # and, with socket activation, the user's systemd; anything of theirs but loopback counts.
    _, out = run_as_user(cfg, "ss -Hltnp")
    held = [line.split()[3] for line in out.splitlines() if "users:(" in line]
    public = sorted({addr for addr in held if not addr.startswith(("127.", "[::1]"))})
    extra = [addr for addr in public if not addr.endswith(f":{cfg.serve_port}")]
    if extra:
        return (False, f"the app also listens on {', '.join(extra)}")
    return (True, f"listens on {', '.join(public) or '?'} only")


CHECKS: dict[str, Callable[[HostConfig], Verdict]] = {
    "default key rejected": _default_key_rejected,
    "password login refused": _password_refused,
    "root login refused": _root_refused,
    "ssh-audit 0 failures": _ssh_audit_clean,
    "token file 0600, owned by user": _token_file_private,
    "no world-readable secret under home": _no_readable_secrets,
    "app answers on its port only": _app_port_only,
}


def audit_host(cfg: HostConfig) -> HostAudit:
    """Every check against one host; a check that cannot run is a failed row saying why."""
    result = HostAudit(cfg.name)
    for name, check in CHECKS.items():
        try:
            result.checks.append(Check(name, *check(cfg)))
        except (AuditError, DeployError, paramiko.SSHException, OSError) as e:
            result.checks.append(Check(name, False, str(e)))
    return result


def as_json(audits: list[HostAudit]) -> list[dict[str, Any]]:
    return [{"host": a.host, "ok": a.ok, "checks": [asdict(c) for c in a.checks]} for a in audits]


def as_table(audits: list[HostAudit]) -> str:
    """One row per host and check: host, PASS/FAIL, check, evidence."""
    rows = [("HOST", "RESULT", "CHECK", "EVIDENCE")]
    rows += [
        (a.host, "PASS" if c.ok else "FAIL", c.name, c.detail) for a in audits for c in a.checks
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    return "\n".join(
        "  ".join([*(cell.ljust(w) for cell, w in zip(row[:3], widths, strict=False)), row[3]])
        for row in rows
    )
