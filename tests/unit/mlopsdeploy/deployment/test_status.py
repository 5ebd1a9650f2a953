"""The ``mlopsdeploy status`` table: one aligned row per host, errors below, exit status."""

from __future__ import annotations

from mlopsdeploy.deployment.status import HostStatus, as_table, healthy


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
