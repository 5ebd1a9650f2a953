"""``mlopsdeploy status``: what every host of the inventory serves right now, in one table.

Read-only and quick: one HTTP probe of ``/readyz`` from the control machine (what users and the
load balancer see) and one SSH command per host (release, switch time, workers up), all hosts
at once. The load balancer's view of each backend comes from deployment/lb.py when the
inventory has an ``lb`` group.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from datetime import UTC, datetime

import httpx
import paramiko

from mlopsdeploy.config import HostConfig
from mlopsdeploy.deployment.control.host_keys import HostKey, compare_host_key, connect_transport
from mlopsdeploy.deployment.control.ssh_login import try_key
from mlopsdeploy.deployment.host_commands import systemctl
from mlopsdeploy.deployment.operations.service import UNIT
from mlopsdeploy.deployment.operations.workers import PREFIX, accepts

PROBE_TIMEOUT = 5.0


@dataclass
class HostStatus:
    """One row of the table; a field the host could not tell is None (shown as ``-``)."""

    host: str
    url: str
    release: str | None = None
    model_version: str | None = None
    workers_ready: int | None = None
    workers: int | None = None
    readyz: str = "-"
    last_deploy: str | None = None
    lb: str | None = None
    error: str | None = None


def _probe(cfg: HostConfig, row: HostStatus) -> None:
    """``/readyz`` as a client sees it: status code and reason, and the model version."""
    try:
        answer = httpx.get(f"{cfg.url}/readyz", timeout=PROBE_TIMEOUT)
    except httpx.HTTPError as e:
        row.readyz = f"unreachable ({type(e).__name__})"
        return
    try:
        body = answer.json()
    except ValueError:
        body = {}
    body = body if isinstance(body, dict) else {}
    row.readyz = f"{answer.status_code} {body.get('status') or body.get('reason') or ''}".strip()
    row.model_version = body.get("model_version")


def host_command(cfg: HostConfig) -> str:
    """Prints the current release id, when ``current`` was switched, the workers that serve,
    and whether the single unit of an own app (which has no workers) is active.

    A worker serves once it accepts, by the rule the deploy's start of a cold host waits for
    (``workers.accepts``).
    """
    base = shlex.quote(cfg.base_dir)
    workers = systemctl(cfg.service_scope, "list-units", f"{PREFIX}@*.service")
    show = systemctl(cfg.service_scope, "show", "-p", "ActiveState", "-p", "StatusText")
    single = systemctl(cfg.service_scope, "is-active", "--quiet", UNIT)
    return (
        f'basename "$(readlink {base}/current 2>/dev/null)"; '
        f"stat -c %Y {base}/current 2>/dev/null || echo -; "
        f"n=0; for u in $({workers} --no-legend --plain 2>/dev/null | grep -o '{PREFIX}@[^ ]*');"
        " do "
        f's=$({show} "$u"); '
        f"if {accepts('s')}; then n=$((n + 1)); fi; done; echo $n; "
        f"{single} && echo single || echo -"
    )


def _ssh(cfg: HostConfig, row: HostStatus) -> None:
    """Release, switch time and workers up, over one SSH login with the own key."""
    try:
        transport = connect_transport(cfg)
    except ConnectionError as e:
        row.error = f"ssh: {e}"
        return
    try:
        if compare_host_key(cfg, transport.get_remote_server_key()) != HostKey.RECORDED:
            row.error = f"ssh: host key not the one recorded in {cfg.known_hosts}"
            return
        if not try_key(transport, cfg.user, cfg.own_key):
            row.error = f"ssh: {cfg.own_key} not accepted"
            return
        channel = transport.open_session(timeout=PROBE_TIMEOUT)
        channel.settimeout(PROBE_TIMEOUT * 2)
        channel.exec_command(host_command(cfg))
        lines = bytes(channel.makefile("rb").read()).decode(errors="replace").split("\n")
    except (paramiko.SSHException, OSError, EOFError) as e:
        row.error = f"ssh: {e}"
        return
    finally:
        transport.close()
    release, switched, active, single = [*lines, "", "", "", ""][:4]
    row.release = release.strip() or None
    if switched.strip().isdigit():
        row.last_deploy = (
            datetime.fromtimestamp(int(switched), UTC).isoformat(timespec="seconds")
        ).replace("+00:00", "Z")
    if single.strip() == "single":
        row.workers_ready, row.workers = 1, 1
    elif active.strip().isdigit():
        row.workers_ready, row.workers = int(active), cfg.workers


def host_status(cfg: HostConfig) -> HostStatus:
    row = HostStatus(cfg.name, cfg.url)
    _probe(cfg, row)
    _ssh(cfg, row)
    return row


LbView = Callable[[Sequence[HostConfig]], Mapping[str, str]]


def collect(hosts: Sequence[HostConfig], lb_view: LbView | None = None) -> list[HostStatus]:
    """A row per host, probed all at once; the LB column when ``lb_view`` is given."""
    if not hosts:
        return []
    with ThreadPoolExecutor(max_workers=len(hosts)) as pool:
        rows = list(pool.map(host_status, hosts))
    if lb_view is not None:
        view = lb_view(hosts)
        for row in rows:
            row.lb = view.get(row.host, "-")
    return rows


COLUMNS = (
    ("HOST", "host"),
    ("RELEASE", "release"),
    ("MODEL", "model_version"),
    ("WORKERS", "workers_ready"),
    ("/READYZ", "readyz"),
    ("LAST DEPLOY (UTC)", "last_deploy"),
    ("LB", "lb"),
)


def _cell(row: HostStatus, key: str) -> str:
    if key == "workers_ready":
        return "-" if row.workers_ready is None else f"{row.workers_ready}/{row.workers}"
    value = getattr(row, key)
    return "-" if value is None else str(value)


def as_table(rows: Sequence[HostStatus]) -> str:
    """Aligned columns, one line per host, then any host's SSH error below the table."""
    cells = [[title for title, _ in COLUMNS]]
    cells += [[_cell(row, key) for _, key in COLUMNS] for row in rows]
    widths = [max(len(line[i]) for line in cells) for i in range(len(COLUMNS))]
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip() for line in cells
    ]
    lines += [f"{row.host}: {row.error}" for row in rows if row.error]
    return "\n".join(lines)


def as_json(rows: Sequence[HostStatus]) -> str:
    return json.dumps([asdict(row) for row in rows], indent=2)


def healthy(rows: Sequence[HostStatus]) -> bool:
    """Every host answers /readyz 200 with all its workers up (the CLI's exit status)."""
    return all(
        row.readyz.startswith("200") and row.error is None and row.workers_ready == row.workers
        for row in rows
    )
