"""The app under systemd: unit files, the token's EnvironmentFile, linger, and (re)starts.

A user unit with linger is what the course's good solutions use (no root needed to manage it,
and it runs with nobody logged in); a system unit is available for hosts where that is preferred.
Either way systemd restarts the app forever (``StartLimitIntervalSec=0``), the token only ever
exists in a 0600 file read by systemd, and a restart happens only when an input changed.
"""

from __future__ import annotations

import hashlib
import io
import shlex
from dataclasses import dataclass, field
from typing import Literal

from pyinfra import host
from pyinfra.api import FileUploadCommand, Host, operation
from pyinfra.api.operation import OperationMeta
from pyinfra.facts.files import Directory

from mlopsdeploy.config import HostConfig
from mlopsdeploy.deployment.control.appspec import AppSpec
from mlopsdeploy.deployment.facts.service import FileDigest, ServiceStatus
from mlopsdeploy.deployment.host_commands import systemctl, unit_quote

UNIT = "mlopsdeploy.service"
CANDIDATE_UNIT = "mlopsdeploy-candidate.service"
Role = Literal["main", "candidate"]

# Hardening a *user* manager can apply without user namespaces (which containers and many VMs
# lack); a system unit additionally gets a read-only OS and private /tmp and devices.
_HARDENING_USER = (
    "NoNewPrivileges=yes",
    "UMask=0077",
    "LockPersonality=yes",
    "RestrictRealtime=yes",
    "RestrictSUIDSGID=yes",
)
# A hung app (SIGSTOP, a stuck event loop) stops its WATCHDOG=1 pings (app/systemd.py); systemd
# then kills it with SIGKILL, which also ends a stopped process, and Restart=always brings it back.
_WATCHDOG = ("WatchdogSec=20", "WatchdogSignal=SIGKILL", "NotifyAccess=main")
_HARDENING_SYSTEM = (
    "ProtectSystem=strict",
    "PrivateTmp=yes",
    "PrivateDevices=yes",
    "ProtectKernelTunables=yes",
    "ProtectControlGroups=yes",
)


def unit_dir(cfg: HostConfig) -> str:
    if cfg.service_scope == "system":
        return "/etc/systemd/system"
    return f"/home/{cfg.user}/.config/systemd/user"


def env_file_path(cfg: HostConfig) -> str:
    return f"{cfg.base_dir}/app.env"


def render_unit(cfg: HostConfig, role: Role = "main", spec: AppSpec | None = None) -> str:
    """The unit text for the serving app (``main``) or the release being gated (``candidate``).

    The candidate runs the same code from the ``candidate`` link (and ``candidate-venv``) on a
    loopback-only port and is never restarted: the gate wants to see its first failure, not hide
    it. With an app ``spec`` the unit runs its start command with its environment; only an app
    that declares it pings systemd's watchdog gets ``WatchdogSec`` (any other would be killed
    every 20 s).
    """
    base = cfg.base_dir
    link = "current" if role == "main" else "candidate"
    bind, port = (cfg.app_bind, cfg.serve_port) if role == "main" else ("127.0.0.1", cfg.probe_port)
    env = {
        "PYTHONPATH": f"{base}/{link}/app",
        "APP_MODEL": f"{base}/{link}/model",
        "APP_HOST": bind,
        "APP_PORT": str(port),
        "GRADIO_ANALYTICS_ENABLED": "False",
        "HF_HUB_DISABLE_TELEMETRY": "1",
        "PYTHONUNBUFFERED": "1",
    }
    if cfg.api_model:
        env["APP_API_MODEL"] = cfg.api_model
    # The candidate may run on a new lock's venv, which the serving app moves to only later.
    venv = f"{base}/venv" if role == "main" else f"{base}/candidate-venv"
    exec_start = f"{venv}/bin/python -m app"
    if spec is not None:
        for key in ("APP_MODEL", "APP_HOST", "APP_PORT", "APP_API_MODEL"):
            env.pop(key, None)
        env.update(spec.environment(bind, port, f"{base}/{link}/model", cfg.api_model))
        exec_start = spec.exec_start(venv, f"{base}/{link}/app", bind, port)
    lines = [
        "[Unit]",
        f"Description=mlopsdeploy sentiment app ({role})",
        "After=network-online.target",
        "StartLimitIntervalSec=0",
        "",
        "[Service]",
        "Type=simple",
        f"WorkingDirectory={base}",
        f"EnvironmentFile={env_file_path(cfg)}",
        *(f"Environment={unit_quote(f'{key}={value}')}" for key, value in env.items()),
        f"ExecStart={exec_start}",
        "Restart=always" if role == "main" else "Restart=no",
        "RestartSec=2",
        "TimeoutStopSec=20",
        *_HARDENING_USER,
    ]
    if role == "main" and (spec is None or spec.notify):
        lines += _WATCHDOG
    if cfg.service_scope == "system":
        lines += [f"User={cfg.user}", f"ReadWritePaths={base}", *_HARDENING_SYSTEM]
    if role == "main":
        target = "multi-user.target" if cfg.service_scope == "system" else "default.target"
        lines += ["", "[Install]", f"WantedBy={target}"]
    return "\n".join(lines) + "\n"


def render_env(
    token: str | None,
    secrets: tuple[tuple[str, str], ...] = (),
    awaiting_trust: str | None = None,
) -> str:
    """EnvironmentFile content: the secrets and nothing else (the rest is in the unit).

    While the host key awaits a person's confirmation there are no secrets, and
    ``APP_AWAITING_HOST_TRUST`` (the key's fingerprint) lets the app say so instead.
    """
    lines = [f"HF_TOKEN={token}\n" if token else "# no HF token configured\n"]
    if awaiting_trust:
        lines.append(f"APP_AWAITING_HOST_TRUST={awaiting_trust}\n")
    return "".join([*lines, *(f"{name}={value}\n" for name, value in secrets)])


def _digest(content: str, mode: str) -> str:
    return f"{hashlib.sha256(content.encode()).hexdigest()} {mode}"


@operation()
def base_dir(cfg: HostConfig):
    """Create the deploy root, private to the app user (it holds the token file)."""
    path = shlex.quote(cfg.base_dir)
    existing = host.get_fact(Directory, path=cfg.base_dir)
    if existing and existing["mode"] == 700:
        return
    if cfg.service_scope == "system":
        yield f"sudo -n install -d -m 700 -o {shlex.quote(cfg.user)} {path}"
    yield f"mkdir -p {path} && chmod 700 {path}"


@operation()
def unit_file(cfg: HostConfig, role: Role = "main", spec: AppSpec | None = None):
    """Install the unit for ``role`` and reload systemd, only when its text changed.

    + cfg: the host's configuration
    + role: ``main`` or ``candidate``
    + spec: the app's spec (None: the bundled app)
    """
    content = render_unit(cfg, role, spec)
    name = UNIT if role == "main" else CANDIDATE_UNIT
    path = f"{unit_dir(cfg)}/{name}"
    if host.get_fact(FileDigest, path=path) == _digest(content, "644"):
        return
    sudo = cfg.service_scope == "system"
    yield ("sudo -n " if sudo else "umask 022 && ") + f"mkdir -p {shlex.quote(unit_dir(cfg))}"
    if sudo:
        yield FileUploadCommand(io.StringIO(content), path, _sudo=True)
        yield f"sudo -n chmod 644 {shlex.quote(path)}"
    else:
        yield FileUploadCommand(io.StringIO(content), path)
        yield f"chmod 644 {shlex.quote(path)}"
    yield f"{systemctl(cfg.service_scope)} daemon-reload"


@dataclass(frozen=True)
class EnvValues:
    """What the EnvironmentFile holds. Its repr shows no secret: pyinfra logs every operation's
    arguments (the ``pyinfra`` CLI, ``deploy -v``, ``--json``), and the token is one of them.

    + token: the HF token
    + secrets: further (name, value) pairs an app's spec declares
    + awaiting_trust: the unconfirmed host key's fingerprint (then token and secrets are None)
    """

    token: str | None = field(default=None, repr=False)
    secrets: tuple[tuple[str, str], ...] = field(default=(), repr=False)
    awaiting_trust: str | None = None


@operation()
def env_file(cfg: HostConfig, values: EnvValues):
    """Write the 0600 EnvironmentFile holding the HF token, only when content or mode differ.

    The file is created empty with mode 0600 *before* the secret is uploaded into it, and the
    content travels over SFTP, never on a command line.

    + cfg: the host's configuration
    + values: the token, the app's secrets, or why there are none
    """
    content = render_env(values.token, values.secrets, values.awaiting_trust)
    path = env_file_path(cfg)
    if host.get_fact(FileDigest, path=path) == _digest(content, "600"):
        return
    yield f"install -m 600 /dev/null {shlex.quote(path)}"
    yield FileUploadCommand(io.StringIO(content), path)


@operation()
def linger(cfg: HostConfig):
    """Enable linger so the user manager (and the app) run without a login and after reboots."""
    if cfg.service_scope == "system":
        return
    if host.get_fact(ServiceStatus, unit=UNIT, scope="user").linger:
        return
    yield (
        'loginctl enable-linger 2>/dev/null || sudo -n loginctl enable-linger "$(id -un)"; '
        'for i in $(seq 50); do [ -S "/run/user/$(id -u)/systemd/private" ] && break; '
        "sleep 0.1; done"
    )


@operation()
def service_running(cfg: HostConfig, restart: bool = False, after: tuple[OperationMeta, ...] = ()):
    """Enable the app's unit and make it active; restart it when one of its inputs changed.

    + cfg: the host's configuration
    + restart: restart in any case (a new release is current)
    + after: operations (venv, release, token, unit) whose changes require a restart
    """
    status = host.get_fact(ServiceStatus, unit=UNIT, scope=cfg.service_scope)
    ctl = systemctl(cfg.service_scope)
    if not status.enabled:
        yield f"{ctl} enable {UNIT}"
    inputs_changed = any(op.is_complete() and op.did_change() for op in after)
    if restart or inputs_changed or not status.active:
        yield f"{ctl} restart {UNIT}"


def journal_tail(target: Host, cfg: HostConfig, unit: str = UNIT, lines: int = 12) -> list[str]:
    """The last journal lines of ``unit`` that explain something, for error messages.

    HTTP access lines are dropped: during a failed gate they are just the probe's own requests.
    A user's journal may not be readable without sudo, so both are tried.
    """
    selector = f"--user-unit {unit}" if cfg.service_scope == "user" else f"-u {unit}"
    read = f"-n 200 --no-pager -q -o cat 2>/dev/null | grep -v uvicorn.access | tail -n {lines}"
    command = f"sudo -n journalctl {selector} {read}; true"
    if cfg.service_scope == "user":
        command = f"{{ journalctl --user -u {unit} {read} | grep . ; }} || {command}"
    ok, output = target.run_shell_command(command)
    return output.stdout_lines[-lines:] if ok else []
