"""The app as N workers on one socket systemd holds, restarted one at a time.

A single process on a port only it holds makes every restart, crash and release switch an outage.
Here the port belongs to ``mlopsdeploy.socket`` and stays open whatever the workers do; each
worker (``mlopsdeploy@N.service``, a template instance) inherits that listening socket
(``Sockets=``) and accepts from it once its model answers the canaries right (``Type=notify``,
see app/systemd.py). Connections that arrive while no worker accepts wait in the backlog.
``mlopsdeploy.target`` is the app as a whole: enabled at boot, it wants the socket and the
workers, and restarting it restarts every worker (``PartOf=``) while the socket stays.

A rolling restart restarts one worker, waits for its ``READY=1`` (``systemctl restart`` returns
only then), and only then the next, so the others serve meanwhile. A worker that does not become
ready stops the roll: the workers not yet restarted keep serving the release they had, and the
gate (operations/gate.py) puts the previous release back on the ones that were.

Only the bundled app speaks this protocol; an app from a spec keeps the single unit
(operations/service.py). A host still running that single unit moves to these units in one deploy.
"""

from __future__ import annotations

import hashlib
import io
import shlex
from collections.abc import Collection
from dataclasses import dataclass, field

from pyinfra import host
from pyinfra.api import FileUploadCommand, FunctionCommand, Host, State, operation
from pyinfra.api.operation import OperationMeta

from mlopsdeploy.config import HostConfig
from mlopsdeploy.deployment.control.appspec import AppSpec
from mlopsdeploy.deployment.facts.service import FileDigest, WorkerUnits
from mlopsdeploy.deployment.host_commands import systemctl
from mlopsdeploy.deployment.operations.service import (
    _HARDENING_SYSTEM,
    _HARDENING_USER,
    UNIT,
    env_file_path,
    journal_tail,
    unit_dir,
)

PREFIX = "mlopsdeploy"
SOCKET = f"{PREFIX}.socket"
TARGET = f"{PREFIX}.target"
TEMPLATE = f"{PREFIX}@.service"
LEGACY_UNIT = UNIT
# A start is imports + model load + canaries: ~12 s on a quiet VM, a minute on a busy one.
START_TIMEOUT_S = 300
# A hung worker (SIGSTOP, a stuck event loop) holds what it accepted, and a client's kept-alive
# connection to it, until systemd's watchdog kills it: the other workers take every new
# connection, but that client waits up to this long, then sees a reset. The single unit's 20 s
# halved: 5 s killed no worker by mistake in 4 starts and 3897 requests at load 17-23 (a CPU hog
# inside a test VM), so 10 s keeps a margin of two. The app pings at half of it (app/systemd.py).
WATCHDOG_S = 10
# A worker's sd_notify STATUS= once it accepts (its JSON API serves; READY=1 follows when its UI
# is built too). The same word as ACCEPTING_STATUS in app/__main__.py.
ACCEPTING_STATUS = "accepting"


def accepts(state: str) -> str:
    """Shell test: the ``systemctl show`` lines (ActiveState= and StatusText= among them) held
    in the shell variable ``state`` are those of a worker that accepts.

    It accepts once ``active`` (READY=1: its UI built too), or while still ``activating`` with
    the status ``accepting`` (its JSON API serves; READY=1 follows after the UI build, a minute
    at load). The deploy's start of a cold host waits for this, and ``mlopsdeploy status``
    counts a worker up by it: one rule, so the two never disagree about the same worker.
    """
    lines = f"printf '%s\\n' \"${state}\""
    return (
        f"{{ {lines} | grep -qx ActiveState=active || {{ {lines} | grep -qx ActiveState=activating"
        f" && {lines} | grep -qx StatusText={ACCEPTING_STATUS}; }}; }}"
    )


def serves_socket(spec: AppSpec | None) -> bool:
    """Whether the app runs as workers on the socket: only the bundled app speaks that protocol."""
    return spec is None or spec.bundled


def worker_unit(instance: int | str) -> str:
    """``mlopsdeploy@<instance>.service``."""
    return f"{PREFIX}@{instance}.service"


def worker_units(cfg: HostConfig) -> list[str]:
    """The configured workers, in the order a rolling restart takes them."""
    return [worker_unit(n) for n in range(1, cfg.workers + 1)]


def serving_units(cfg: HostConfig, spec: AppSpec | None) -> list[str]:
    """The units whose processes serve the app: the workers, or an app spec's single unit."""
    return worker_units(cfg) if serves_socket(spec) else [UNIT]


def listen_address(cfg: HostConfig) -> str:
    """``ListenStream=`` value for the app's bind address and port (IPv6 in brackets)."""
    bind = f"[{cfg.app_bind}]" if ":" in cfg.app_bind else cfg.app_bind
    return f"{bind}:{cfg.serve_port}"


def render_socket(cfg: HostConfig) -> str:
    """The socket unit: the app port, open as long as the socket unit runs.

    ``Service=`` names worker 1: a connection arriving while no worker runs (all stopped by
    hand, or after a crash) starts it, instead of the socket failing for want of a service.
    """
    return "\n".join(
        [
            "[Unit]",
            "Description=mlopsdeploy app port (held open while workers restart)",
            "",
            "[Socket]",
            f"ListenStream={listen_address(cfg)}",
            f"Service={worker_unit(1)}",
            "NoDelay=yes",
            "",
        ]
    )


def render_worker(cfg: HostConfig) -> str:
    """The worker template: the app on the inherited socket, ready only when it answers right."""
    base = cfg.base_dir
    env = {
        "PYTHONPATH": f"{base}/current/app",
        "APP_MODEL": f"{base}/current/model",
        "GRADIO_ANALYTICS_ENABLED": "False",
        "HF_HUB_DISABLE_TELEMETRY": "1",
        "PYTHONUNBUFFERED": "1",
    }
    if cfg.api_model:
        env["APP_API_MODEL"] = cfg.api_model
    lines = [
        "[Unit]",
        "Description=mlopsdeploy sentiment app, worker %i",
        f"Requires={SOCKET}",
        f"After={SOCKET} network-online.target",
        f"PartOf={TARGET}",
        # A worker started on its own pulls the whole app back: after `systemctl stop` of the
        # target the socket stays and starts worker 1 on the next connection, and this brings
        # the target and every other worker with it, so the host is again what a deploy makes it.
        f"Wants={TARGET}",
        "StartLimitIntervalSec=0",
        "",
        "[Service]",
        "Type=notify",
        f"Sockets={SOCKET}",
        # systemd sets the passed socket to blocking mode for every worker it starts, and that
        # flag belongs to the socket all workers share: the others' event loops would then block
        # in accept(). NonBlocking=yes keeps it non-blocking for all.
        "NonBlocking=yes",
        f"WorkingDirectory={base}",
        f"EnvironmentFile={env_file_path(cfg)}",
        *(f'Environment="{key}={value}"' for key, value in env.items()),
        f"ExecStart={base}/venv/bin/python -m app",
        "Restart=always",
        "RestartSec=2",
        f"TimeoutStartSec={START_TIMEOUT_S}",
        # A stopping worker answers every request it accepted first (app/__main__.py): this
        # bounds that, and past it systemd's SIGKILL resets what is left (never an HTTP 500).
        "TimeoutStopSec=20",
        f"WatchdogSec={WATCHDOG_S}",
        "WatchdogSignal=SIGKILL",
        "NotifyAccess=main",
        *_HARDENING_USER,
    ]
    if cfg.service_scope == "system":
        lines += [f"User={cfg.user}", f"ReadWritePaths={base}", *_HARDENING_SYSTEM]
    return "\n".join(lines) + "\n"


def render_target(cfg: HostConfig) -> str:
    """The app as a whole: what boot starts, and what ``systemctl restart`` restarts entirely."""
    wanted = " ".join([SOCKET, *worker_units(cfg)])
    install = "multi-user.target" if cfg.service_scope == "system" else "default.target"
    return "\n".join(
        [
            "[Unit]",
            f"Description=mlopsdeploy sentiment app ({cfg.workers} workers on {SOCKET})",
            f"Wants={wanted}",
            "",
            "[Install]",
            f"WantedBy={install}",
            "",
        ]
    )


def rendered_units(cfg: HostConfig) -> dict[str, str]:
    """Unit file name -> content, for every unit of the worker layout."""
    return {SOCKET: render_socket(cfg), TEMPLATE: render_worker(cfg), TARGET: render_target(cfg)}


def _digest(content: str) -> str:
    return f"{hashlib.sha256(content.encode()).hexdigest()} 644"


@operation()
def unit_files(cfg: HostConfig):
    """Install the socket, worker template and target; reload systemd only if one changed.

    + cfg: the host's configuration
    """
    directory = unit_dir(cfg)
    stale = {
        name: content
        for name, content in rendered_units(cfg).items()
        if host.get_fact(FileDigest, path=f"{directory}/{name}") != _digest(content)
    }
    if not stale:
        return
    sudo = cfg.service_scope == "system"
    yield ("sudo -n " if sudo else "umask 022 && ") + f"mkdir -p {shlex.quote(directory)}"
    for name, content in stale.items():
        path = f"{directory}/{name}"
        yield FileUploadCommand(io.StringIO(content), path, _sudo=sudo)
        yield ("sudo -n " if sudo else "") + f"chmod 644 {shlex.quote(path)}"
    yield f"{systemctl(cfg.service_scope)} daemon-reload"


@dataclass
class Rollout:
    """What a rolling restart did, for the gate that verifies it (pyinfra only keeps a bool).

    + restarted: workers restarted (in order) onto the release now current
    + failed: the worker that did not become ready, which stopped the roll
    + journal: that worker's last journal lines
    """

    restarted: list[str] = field(default_factory=list)
    failed: str | None = None
    journal: list[str] = field(default_factory=list)


def restart_in_turn(
    target: Host,
    cfg: HostConfig,
    units: list[str],
    rollout: Rollout,
    down: Collection[str] = (),
) -> bool:
    """Restart ``units`` one after another, each only after the previous one said READY=1.

    The units in ``down`` were not running: they are started instead, which joins a start
    already under way (worker 1 pulls in the target and with it every worker) instead of
    restarting a worker that is still loading its model. Stops at the first that does not
    become ready, so the rest keep serving what they served. Returns whether all became ready.
    """
    ctl = systemctl(cfg.service_scope)
    for unit in units:
        verb = "start" if unit in down else "restart"
        ok, _ = target.run_shell_command(f"{ctl} {verb} {shlex.quote(unit)}")
        if not ok:
            rollout.failed = unit
            rollout.journal = journal_tail(target, cfg, unit)
            return False
        rollout.restarted.append(unit)
    return True


def start_script(ctl: str, units: list[str], timeout: int) -> str:
    """Shell lines: start ``units`` and the target at once, return once every unit accepts,
    else print the first that failed and exit 1.

    Accepting: as ``accepts`` says. Failed: systemd is restarting it or restarted it since this
    start (a worker that is not ready exits), or gave up on it. A unit's state counts only once
    its new invocation began: before the start job ran, it still reads as the failed or
    stopping unit it was. A unit already starting or running (the socket
    started worker 1 for a client or HAProxy's health check) has no stale state: the start
    leaves its invocation as it is, so its state counts at once. Its restart count is read
    against the count before the start, since systemd keeps counting across a manual start of
    a unit it was restarting (a worker crash-looping on a wiped home, or started by the socket
    too early): that unit's pending restart is the start itself, one more is a failure.
    """
    names = " ".join(shlex.quote(unit) for unit in units)
    show = f'{ctl} show -p ActiveState -p SubState -p NRestarts -p StatusText -p InvocationID "$u"'
    return "\n".join(
        [
            # One line per unit: its restart count, then its stale invocation (none if running).
            f"before=$(for u in {names}; do",
            f'  s=$({ctl} show -p SubState -p InvocationID -p NRestarts "$u")',
            "  id=$(printf '%s\\n' \"$s\" | sed -n 's/^InvocationID=//p')",
            "  printf '%s\\n' \"$s\" | grep -qxE 'SubState=(running|start|start-pre|start-post)'"
            " && id=",
            "  echo \"$(printf '%s\\n' \"$s\" | sed -n 's/^NRestarts=//p') $id\"",
            "done)",
            f"{ctl} start --no-block {TARGET} {names} || exit 2",
            f"end=$(( $(date +%s) + {timeout} )); i=0",
            f"for u in {names}; do",
            '  i=$((i + 1)); b=$(printf \'%s\\n\' "$before" | sed -n "${i}p")',
            "  n0=${b%% *}; old=${b#* }",
            "  while :; do",
            f"    s=$({show})",
            '    if ! printf \'%s\\n\' "$s" | grep -qx "InvocationID=$old"; then',
            '      n=$(printf \'%s\\n\' "$s" | sed -n "s/^NRestarts=//p")',
            "      if printf '%s\\n' \"$s\" | grep -qxE "
            "'SubState=auto-restart|ActiveState=failed' \\",
            '        || [ "${n:-0}" -gt $(( ${n0:-0} + 1 )) ]; then',
            '        echo "$u"; exit 1',
            "      fi",
            f"      {accepts('s')} && break",
            "    fi",
            '    [ "$(date +%s)" -lt "$end" ] || { echo "$u"; exit 1; }',
            "    sleep 0.2",
            "  done",
            "done",
        ]
    )


def start_together(target: Host, cfg: HostConfig, units: list[str], rollout: Rollout) -> bool:
    """Start every worker at once (and the target) and return when each one accepts.

    For a host where no worker serves (a cold deploy, a wiped home): a roll there would protect
    nobody. Waiting for each READY=1 in turn meant waiting for every UI build (gradio's import,
    its bytecode compiled on a fresh venv), which was 44 s of the 53 s first start at load 12;
    the JSON API serves, and UI requests wait for their page, from `accepting` on. A worker that
    fails to start is recorded as a roll's failure is, for the gate to undo.
    """
    script = start_script(systemctl(cfg.service_scope), units, START_TIMEOUT_S)
    ok, output = target.run_shell_command(script)
    if ok:
        rollout.restarted.extend(units)
        return True
    failed = [line.strip() for line in output.stdout_lines if line.strip() in units]
    rollout.failed = failed[-1] if failed else units[0]
    rollout.restarted.extend(unit for unit in units if unit != rollout.failed)
    rollout.journal = journal_tail(target, cfg, rollout.failed)
    return False


def _roll(
    state: State, host: Host, cfg: HostConfig, units: list[str], rollout: Rollout, down: list[str]
) -> bool:
    """FunctionCommand body: the roll never fails the operation, the gate reads its record."""
    restart_in_turn(host, cfg, units, rollout, down)
    return True


def _start_together(
    state: State, host: Host, cfg: HostConfig, units: list[str], rollout: Rollout
) -> bool:
    """FunctionCommand body, like `_roll`: the gate reads the record."""
    start_together(host, cfg, units, rollout)
    return True


@operation(is_idempotent=False)
def workers_running(
    cfg: HostConfig,
    rollout: Rollout,
    restart: bool = False,
    after: tuple[OperationMeta, ...] = (),
):
    """Socket listening, every worker up, the target enabled; a rolling restart when needed.

    + cfg: the host's configuration (``workers``: how many)
    + rollout: where the roll's outcome goes (read by the gate)
    + restart: restart every worker in turn in any case (a new release is current)
    + after: operations (venv, release, token, units) whose changes require a restart
    """
    layout = host.get_fact(
        WorkerUnits,
        prefix=PREFIX,
        scope=cfg.service_scope,
        legacy_file=f"{unit_dir(cfg)}/{LEGACY_UNIT}",
    )
    ctl = systemctl(cfg.service_scope)
    if layout.legacy:
        # The single unit of earlier versions holds the port: it goes first, the socket takes
        # the port a moment later, and connections wait in its backlog from then on.
        rm = "sudo -n rm -f" if cfg.service_scope == "system" else "rm -f"
        yield (
            f"{ctl} disable --now {LEGACY_UNIT} 2>/dev/null; "
            f"{rm} {shlex.quote(f'{unit_dir(cfg)}/{LEGACY_UNIT}')} && {ctl} daemon-reload"
        )
    if not layout.socket_active:
        yield f"{ctl} start {SOCKET}"
    inputs_changed = any(op.is_complete() and op.did_change() for op in after)
    wanted = [str(n) for n in range(1, cfg.workers + 1)]
    due = [
        worker_unit(n)
        for n in wanted
        if restart or inputs_changed or layout.legacy or not layout.up(n)
    ]
    down = [worker_unit(n) for n in wanted if not layout.up(n)]
    # Cold: no worker of any count up, no old unit serving. Nothing to protect, so all start at
    # once and the run waits for their JSON API, not their UI (see `start_together`).
    cold = bool(due) and not layout.legacy and not any(map(layout.up, layout.workers))
    if cold:
        yield FunctionCommand(_start_together, (cfg, due, rollout), {})
    elif due:
        yield FunctionCommand(_roll, (cfg, due, rollout, down), {})
    surplus = [worker_unit(n) for n in layout.workers if n not in wanted and layout.active(n)]
    if surplus:
        yield f"{ctl} stop {' '.join(surplus)}"
    if not layout.enabled:
        yield f"{ctl} enable {TARGET}"
    if not layout.target_active and not cold:
        yield f"{ctl} start {TARGET}"
