"""HAProxy in front of the app hosts, control side: its config and its runtime API.

The config is rendered from the inventory, so adding a host to hosts.toml and deploying puts it
behind the load balancer. HAProxy checks each backend's ``/readyz`` (ready = the model answers
its canaries right), so a dead, wiped or not-yet-deployed host is taken out within three failed
checks, and a request that meets a dead backend before that is retried on another one
(``retry-on``, ``redispatch``): users see no error while a host dies.

The runtime API (HAProxy's admin socket, reached over SSH with ``socat``) drains a host before
its release restarts it and puts it back afterwards.
"""

from __future__ import annotations

import csv
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from mlopsdeploy.config import ConfigError, HostConfig
from mlopsdeploy.deployment.control.audit import AuditError, run_as_user
from mlopsdeploy.errors import DeployError

BACKEND = "app"
ADMIN_SOCKET = "/run/haproxy/admin.sock"
# HAProxy accepts these characters in a server name; a host name with others cannot be one.
_SERVER_NAME = re.compile(r"[A-Za-z0-9_.:-]+")
#: Health checks every 2 s; 3 failures take a backend out, 2 successes bring it back. A check
#: may take 5 s: /readyz runs the model on its canaries, slow on a busy host but not a failure.
#: A dead host is refused at once and found within 6 s; meanwhile retry-on covers its requests.
CHECK = "check inter 2s fall 3 rise 2"
CHECK_TIMEOUT_S = 5
#: A request may wait this long for its answer: a worker's first start holds it in the backlog.
SERVER_TIMEOUT_S = 90
#: Requests one app worker gets at once (half its micro-batch); more wait in HAProxy's queue.
PER_WORKER = 16
#: How long a request may wait in that queue for a free slot before it is answered 503.
QUEUE_TIMEOUT_S = 60


@dataclass(frozen=True)
class Backend:
    """One app host as HAProxy sees it: server name, where the load balancer reaches it, and
    how many requests it is given at once."""

    name: str
    address: str
    port: int
    maxconn: int


def backends(app_hosts: Sequence[HostConfig]) -> list[Backend]:
    """Every app host at ``address:serve_port``; ConfigError for a name HAProxy cannot take."""
    for cfg in app_hosts:
        if not _SERVER_NAME.fullmatch(cfg.name):
            raise ConfigError(
                f"host {cfg.name!r}: behind a load balancer a host name may only use letters, "
                "digits and _ . : -"
            )
    return [
        Backend(cfg.name, cfg.address, cfg.serve_port, PER_WORKER * cfg.workers)
        for cfg in app_hosts
    ]


def render_config(lb: HostConfig, servers: Sequence[Backend]) -> str:
    """The whole haproxy.cfg: a frontend on the LB host's port, one backend of every app host.

    ``log stdout``: HAProxy runs under systemd, so its log (health changes, errors only) is in
    the journal. ``retry-on``: a backend that dies mid-request (the connection is refused or
    closed without an answer) costs the user nothing, the request goes to another backend;
    HAProxy can only resend a request it holds whole, hence ``http-buffer-request`` (without it
    every POST that met a wiped host came back 502, measured on the testbed); ``503`` is the
    app's "model not loaded yet" from a worker that is just starting, also asked elsewhere: a
    user then gets a 503 only when every backend is down or a request waited 60 s in the
    queue, never because one host is busy or restarting. ``maxconn``: a
    host serving alone (the other drained) under more load than it can take keeps its queue in
    HAProxy, not in front of its own /readyz; otherwise the check timed out behind 88 requests,
    HAProxy took the last host out and answered 503 (measured at load 28).
    """
    lines = [
        "# Rendered by mlopsdeploy from the inventory; the next deploy replaces manual edits.",
        "global",
        "    log stdout format raw local0 notice",
        "    chroot /var/lib/haproxy",
        f"    stats socket {ADMIN_SOCKET} mode 660 level admin expose-fd listeners",
        "    user haproxy",
        "    group haproxy",
        "",
        "defaults",
        "    mode http",
        "    log global",
        "    option dontlog-normal",
        "    timeout connect 2s",
        f"    timeout check {CHECK_TIMEOUT_S}s",
        f"    timeout client {SERVER_TIMEOUT_S}s",
        f"    timeout server {SERVER_TIMEOUT_S}s",
        f"    timeout queue {QUEUE_TIMEOUT_S}s",
        "    retries 3",
        "    option redispatch 1",
        "    retry-on conn-failure empty-response 503",
        "    option http-buffer-request",
        "",
        "frontend app",
        f"    bind :{lb.serve_port}",
        f"    default_backend {BACKEND}",
        "",
        f"backend {BACKEND}",
        "    balance roundrobin",
        "    option httpchk GET /readyz",
        "    http-check expect status 200",
        *(f"    server {s.name} {s.address}:{s.port} {CHECK} maxconn {s.maxconn}" for s in servers),
    ]
    return "\n".join(lines) + "\n"


class StateTimeout(DeployError):
    """A server did not reach the awaited state in HAProxy in time."""


@dataclass(frozen=True)
class ServerState:
    """One backend in HAProxy's ``show stat``.

    + status: UP, DOWN, DRAIN, MAINT, or a transition such as "UP 1/2"
    + sessions: requests it is serving now
    + served: requests it served since HAProxy started
    + check: the last health check's result, e.g. L7OK, L4CON (refused), L7STS (not 200)
    """

    name: str
    status: str
    sessions: int
    served: int
    check: str


def runtime_command(lb: HostConfig, command: str) -> str:
    """HAProxy's answer to one runtime API ``command``; DeployError naming the LB otherwise."""
    try:
        code, output = run_as_user(lb, f"sudo -n socat stdio {ADMIN_SOCKET}", stdin=command + "\n")
    except AuditError as e:
        raise DeployError(lb.name, f"cannot reach HAProxy's runtime API: {e}") from None
    if code != 0:
        raise DeployError(lb.name, f"HAProxy's runtime API failed ({code}): {output.strip()}")
    return output


def parse_stat(output: str) -> dict[str, ServerState]:
    """The app backend's servers from ``show stat`` CSV (header line starts with ``# ``)."""
    rows = csv.DictReader(output.removeprefix("# ").splitlines())
    return {
        row["svname"]: ServerState(
            name=row["svname"],
            status=row["status"],
            sessions=int(row["scur"] or 0),
            served=int(row["stot"] or 0),
            check=row.get("check_status") or "",
        )
        for row in rows
        if row.get("pxname") == BACKEND and row.get("svname") not in ("FRONTEND", "BACKEND")
    }


def servers(lb: HostConfig) -> dict[str, ServerState]:
    """Every backend's state as HAProxy on ``lb`` sees it now."""
    return parse_stat(runtime_command(lb, "show stat"))


def set_state(lb: HostConfig, server: str, state: str) -> None:
    """``ready``, ``drain`` or ``maint`` for one server; HAProxy answers nothing on success."""
    answer = runtime_command(lb, f"set server {BACKEND}/{server} state {state}").strip()
    if answer:
        raise DeployError(lb.name, f"HAProxy refused to set {server} {state}: {answer}")


def wait_for(
    lb: HostConfig,
    server: str,
    wanted: Callable[[ServerState], bool],
    timeout: float,
    what: str,
    interval: float = 0.5,
) -> ServerState:
    """Poll HAProxy until ``server``'s state is ``wanted``; StateTimeout saying ``what`` was
    awaited, with the last state seen, once ``timeout`` seconds passed."""
    deadline = time.monotonic() + timeout
    while True:
        state = servers(lb).get(server)
        if state is None:
            raise DeployError(lb.name, f"HAProxy has no server {server} (config out of date?)")
        if wanted(state):
            return state
        if time.monotonic() >= deadline:
            raise StateTimeout(
                lb.name,
                f"{server} not {what} after {timeout:.0f}s: {state.status}, check {state.check}",
            )
        time.sleep(interval)
