"""The facts' parsers, fed the exact output their shell commands print."""

from __future__ import annotations

from mlopsdeploy.deployment.facts.host import FreeSpaceMB
from mlopsdeploy.deployment.facts.release import (
    ReleaseFiles,
    ReleaseIndex,
    ReleaseIntegrity,
    Releases,
)
from mlopsdeploy.deployment.facts.runtime import (
    InstallerVersion,
    LockStamp,
    TargetPython,
    VenvReport,
    VenvState,
)
from mlopsdeploy.deployment.facts.service import FileDigest, ServiceStatus


def test_venv_state_lists_broken_distributions() -> None:
    out = ["stamp abc", "broken fastapi missing", "broken torch files"]
    assert VenvState().process(out) == VenvReport(stamp="abc", broken=["fastapi", "torch"])
    assert VenvState().process(["stamp none"]) == VenvReport(stamp=None)


def test_releases_index() -> None:
    out = ["current r-0000002", "previous r-0000001", "release r-0000001", "release r-0000002"]
    index = ReleaseIndex("r-0000002", "r-0000001", ["r-0000001", "r-0000002"])
    assert Releases().process(out) == index
    assert Releases().process(["current ", "previous "]) == ReleaseIndex()


def test_a_link_to_anything_but_a_release_id_is_no_release() -> None:
    out = ["current r-1$(reboot)", "previous x y", "release ; rm -rf ~", "release r-abcdef123456"]
    assert Releases().process(out) == ReleaseIndex(None, None, ["r-abcdef123456"])


def test_release_integrity_reads_every_file_and_the_marker() -> None:
    out = ["complete", "ab  ./app.whl", "cd  ./app/app/routes.py", "\\ef  ./model/a\\nb"]
    files = ReleaseIntegrity().process(out)
    assert files == ReleaseFiles(
        {"app.whl": "ab", "app/app/routes.py": "cd", "model/a\\nb": "ef"}, complete=True
    )
    assert ReleaseIntegrity().process(["absent"]) == ReleaseFiles(None)


def test_release_check_names_damaged_missing_and_extra_files() -> None:
    expected = {"app.whl": "a", "app/app/x.py": "b", "SHA256SUMS": "c"}
    found = ReleaseFiles({"app.whl": "a", "app/app/x.py": "X", "model/new": "d"}, complete=True)
    check = found.against(expected)
    assert (check.state, check.bad, check.extra) == (
        "corrupt",
        ["SHA256SUMS", "app/app/x.py"],
        ["model/new"],
    )
    assert ReleaseFiles(dict(expected), complete=True).against(expected).state == "ok"
    assert ReleaseFiles(dict(expected), complete=False).against(expected).state == "incomplete"
    assert ReleaseFiles(None).against(expected).bad == sorted(expected)


def test_service_status() -> None:
    status = ServiceStatus().process(["active active", "enabled enabled", "linger yes"])
    assert (status.active, status.enabled, status.linger) == (True, True, True)
    stopped = ServiceStatus().process(["active inactive", "enabled", "linger no"])
    assert (stopped.active, stopped.enabled, stopped.linger) == (False, False, False)


def test_small_facts() -> None:
    df = ["Filesystem 1048576-blocks Used Available Capacity Mounted", "overlay 100 40 60 40% /"]
    assert FreeSpaceMB().process(df) == 60
    assert TargetPython().process(["3.11 x86_64 2.36"]).libc == "2.36"
    assert LockStamp().process(["none"]) is None
    assert InstallerVersion().process(["uv 0.13.8 (x86_64-unknown-linux-gnu)"]) == "uv 0.13.8"
    assert InstallerVersion().process(["none"]) is None
    assert FileDigest().process(["none"]) is None
    assert FileDigest().process(["abc 600"]) == "abc 600"
