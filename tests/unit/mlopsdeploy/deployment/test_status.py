"""The ``mlopsdeploy status`` table: one aligned row per host, errors below, exit status; and
which workers it counts as up."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from mlopsdeploy.config import HostConfig
from mlopsdeploy.deployment.status import HostStatus, as_table, healthy, host_command


def serving(name: str, **changes: object) -> HostStatus:
    row = HostStatus(
        name,
        f"http://{name}:8000",
        release="r-1",
        model_version="m-1",
        workers_ready=1,
        workers=1,
        readyz="200 ready",
        last_deploy="2026-11-30T08:00:00Z",
    )
    for key, value in changes.items():
        setattr(row, key, value)
    return row


def test_one_row_per_host_and_the_ssh_error_below() -> None:
    rows = [
        serving("app1", lb="UP"),
        serving("app2", readyz="unreachable (ConnectError)", release=None, error="ssh: refused"),
    ]
    lines = as_table(rows).splitlines()
    assert lines[0].split() == [
        "HOST", "RELEASE", "MODEL", "WORKERS", "/READYZ", "LAST", "DEPLOY", "(UTC)", "LB",
    ]  # fmt: skip
    assert lines[1].split() == [
        "app1",
        "r-1",
        "m-1",
        "1/1",
        "200",
        "ready",
        "2026-11-30T08:00:00Z",
        "UP",
    ]
    assert lines[2].split()[:2] == ["app2", "-"]
    assert lines[3] == "app2: ssh: refused"
    # the columns line up: each header starts where its values start
    assert lines[0].index("WORKERS") == lines[1].index("1/1") == lines[2].index("1/1")


def test_healthy_only_when_every_host_answers_with_all_workers() -> None:
    assert healthy([serving("a"), serving("b")])
    assert not healthy([serving("a"), serving("b", workers_ready=0, workers=1)])
    assert not healthy([serving("a", readyz="503 not ready")])
    assert not healthy([serving("a", error="ssh: refused")])


FAKE_SYSTEMCTL = """#!/bin/sh
# systemctl --user as a host with four workers answers it (see the test)
case "$*" in
  *list-units*) printf '%s\\n' \\
    'mlopsdeploy@1.service loaded active running worker 1' \\
    'mlopsdeploy@2.service loaded activating start worker 2' \\
    'mlopsdeploy@3.service loaded activating start worker 3' \\
    'mlopsdeploy@4.service loaded failed failed worker 4' ;;
  *show*mlopsdeploy@1.service) printf 'ActiveState=active\\nStatusText=ready\\n' ;;
  *show*mlopsdeploy@2.service) printf 'ActiveState=activating\\nStatusText=accepting\\n' ;;
  *show*mlopsdeploy@3.service) printf 'ActiveState=activating\\nStatusText=\\n' ;;
  *show*mlopsdeploy@4.service) printf 'ActiveState=failed\\nStatusText=accepting\\n' ;;
  *is-active*) exit 3 ;;
esac
"""


def test_a_worker_counts_as_up_once_it_accepts(tmp_path: Path) -> None:
    """As the deploy's start of a cold host: active (READY=1), or still activating while its
    UI builds but already accepting (its JSON API serves); not one that is still loading its
    model, nor a failed one whose last status said accepting."""
    fake = tmp_path / "systemctl"
    fake.write_text(FAKE_SYSTEMCTL)
    fake.chmod(0o755)
    cfg = HostConfig(name="a", address="a", own_key=Path("/k"), workers=4)
    env = {**os.environ, "PATH": f"{tmp_path}:{os.environ['PATH']}"}
    run = subprocess.run(
        ["sh", "-c", host_command(cfg)], env=env, capture_output=True, text=True, check=True
    )
    release, switched, workers_up, single = run.stdout.split("\n")[:4]
    assert (release, switched, workers_up, single) == ("", "-", "2", "-")
