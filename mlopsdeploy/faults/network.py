"""Faults at the app's network edges: the Inference API it calls, and the port it listens on."""

from __future__ import annotations

import shlex
from dataclasses import dataclass

from mlopsdeploy.deployment.host_commands import USER_RUNTIME_DIR, systemctl
from mlopsdeploy.faults.base import (
    Fault,
    Recovery,
    Target,
    WhileActive,
    poll_guest,
    require_api,
)
from mlopsdeploy.faults.process import SELF_HEAL_SECONDS

#: The deploy's refusal when something else listens on the app port.
PORT_TAKEN = r"(?i)port\b.*\b(in use|taken|held|busy|occupied)|address already in use"

#: The app's error kind for each stand-in failure mode (app/src/app/inference_api.py).
APP_API_ERRORS = {
    "down": "api_unreachable",
    "slow": "api_timeout",
    "unauthorized": "api_unauthorized",
    "overloaded": "api_overloaded",
}

_HOLDER_UNIT = "mlopsdeploy-fault-port-holder"
_HOLDER_SECONDS = 30


@dataclass
class ApiOutage(Fault):
    """Switch the Inference API stand-in to a failure mode; `undo` switches it back to "ok"."""

    mode: str = "down"

    breaks = (
        "the Inference API behind the API product: down, slower than the app's timeout,"
        " overloaded or rejecting the token"
    )
    needs_api = True

    def __post_init__(self) -> None:
        self.name = f"api-{self.mode}"
        self.recovery = Recovery(
            redeploy=False,
            self_heal_seconds=SELF_HEAL_SECONDS,
            while_active=WhileActive(local_serves=True, api_error=APP_API_ERRORS[self.mode]),
        )

    def inject(self, target: Target) -> None:
        require_api(target).set_mode(self.mode)

    def undo(self, target: Target) -> None:
        if target.api is not None:
            target.api.set_mode("ok")


class TakePort(Fault):
    """A forgotten `python3 -m http.server` grabs the app port the moment the app restarts.

    It answers GET / with 200, so an HTTP-200 smoke test passes while the app is down. It runs
    as a transient user unit that retries its bind, so `undo` is one `systemctl stop`.
    """

    name = "port-taken"
    breaks = "another process listening on the app port when the app restarts"
    recovery = Recovery(
        self_heal_seconds=SELF_HEAL_SECONDS,
        while_active=WhileActive(deploy_error=PORT_TAKEN),
    )

    def not_applicable(self, target: Target) -> str | None:
        # With the worker layout systemd's socket unit holds the port across app restarts, so
        # the moment this fault needs (the port free while the app restarts) never comes.
        if target.service.workers:
            return f"{target.name}: the app port is held by systemd's socket unit, not the app"
        return super().not_applicable(target)

    def inject(self, target: Target) -> None:
        port = str(target.service.port)
        holder = [
            "systemd-run", "--user", "--quiet", "--collect", f"--unit={_HOLDER_UNIT}",
            "-p", "Restart=on-failure", "-p", "RestartSec=50ms", "-p", "StartLimitIntervalSec=0",
            "python3", "-m", "http.server", "--bind", "0.0.0.0", "--directory", "/usr/share/doc",
            port,
        ]  # fmt: skip
        target.guest.sh(f"{USER_RUNTIME_DIR} {shlex.join(holder)}")
        target.guest.sh(target.service.signal_main("KILL"))
        holder_pid = f"$({systemctl('user', 'show', '-p', 'MainPID', '--value', _HOLDER_UNIT)})"
        held = f'ss -Hltnp "sport = :{port}" | grep -q "pid={holder_pid},"'
        poll_guest(target.guest, held, _HOLDER_SECONDS)

    def undo(self, target: Target) -> None:
        target.guest.sh(f"{systemctl('user', 'stop', _HOLDER_UNIT)} 2>/dev/null || true")
