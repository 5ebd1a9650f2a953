"""Running the watchdog for real on the control machine: a systemd user unit, or a cron line.

The unit restarts the watchdog if it ever dies and starts it at login (or at boot with linger).
Cron cannot run anything every 2 s, so the cron line starts the long-running watchdog every
minute instead; the watchdog's instance lock makes every start but the first exit at once, so
cron acts as its supervisor. Secrets (webhook URL, HF token) come from an environment file that
both read, never from the command line.
"""

from __future__ import annotations

import os
import shlex
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from mlopsdeploy.config import config_home

UNIT_NAME = "mlopsdeploy-watchdog.service"
PASSED_ENV = ("MLOPSDEPLOY_CONFIG", "MLOPSDEPLOY_STATE_DIR", "MLOPSDEPLOY_MODEL_DIR")
"""Non-secret settings carried from the shell that generates the unit into the unit."""


def env_file(env: Mapping[str, str] = os.environ) -> Path:
    """KEY=value lines for secrets (MLOPSDEPLOY_WEBHOOK_URL, HF_TOKEN), mode 0600."""
    return config_home(env) / "mlopsdeploy" / "watchdog.env"


def watch_command(options: Sequence[str]) -> list[str]:
    """This interpreter (the venv's), so the unit needs no PATH or activation."""
    return [sys.executable, "-m", "mlopsdeploy.watchdog", *options]


def render_unit(options: Sequence[str], workdir: Path, env: Mapping[str, str] = os.environ) -> str:
    lines = [
        "[Unit]",
        "Description=mlopsdeploy watchdog: probes the app's hosts and recovers them",
        "",
        "[Service]",
        "Type=simple",
        f"WorkingDirectory={workdir}",
        f"EnvironmentFile=-{env_file(env)}",
        *(f"Environment={k}={env[k]}" for k in PASSED_ENV if k in env),
        f"ExecStart={shlex.join(watch_command(options))}",
        "Restart=always",
        "RestartSec=5",
        "",
        "[Install]",
        "WantedBy=default.target",
        "",
    ]
    return "\n".join(lines)


def install_unit(text: str, env: Mapping[str, str] = os.environ) -> Path:
    path = config_home(env) / "systemd" / "user" / UNIT_NAME
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def enable_hint() -> str:
    return (
        "systemctl --user daemon-reload && systemctl --user enable --now "
        f'{UNIT_NAME}\nloginctl enable-linger "$USER"   # keep it running while logged out\n'
        f"journalctl --user -u {UNIT_NAME} -f    # its log"
    )


def cron_line(
    options: Sequence[str], workdir: Path, log: Path, env: Mapping[str, str] = os.environ
) -> str:
    passed = " ".join(f"{k}={shlex.quote(env[k])}" for k in PASSED_ENV if k in env)
    secrets = shlex.quote(str(env_file(env)))
    command = shlex.join(watch_command(options))
    return (
        f"* * * * * mkdir -p {shlex.quote(str(log.parent))} && "
        f"cd {shlex.quote(str(workdir))} && set -a && {{ [ ! -f {secrets} ] || . "
        f"{secrets}; }} && set +a && {passed + ' ' if passed else ''}exec {command} "
        f">> {shlex.quote(str(log))} 2>&1"
    )
