"""The facts' parsers, fed the exact output their shell commands print."""

from __future__ import annotations

from mlopsdeploy.deployment.facts.host import FreeSpaceMB
from mlopsdeploy.deployment.facts.release import ReleaseIndex, ReleaseIntegrity, Releases
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
    out = ["current r-2", "previous r-1", "release r-1", "release r-2"]
    assert Releases().process(out) == ReleaseIndex("r-2", "r-1", ["r-1", "r-2"])
    assert Releases().process(["current ", "previous "]) == ReleaseIndex()


def test_release_integrity_names_failing_files() -> None:
    out = ["model/model.safetensors: FAILED", "model/vocab.txt: FAILED open or read", "checked"]
    check = ReleaseIntegrity().process(out)
    assert check.state == "corrupt"
    assert check.bad == ["model/model.safetensors", "model/vocab.txt"]
    assert ReleaseIntegrity().process(["checked"]).state == "ok"
    assert ReleaseIntegrity().process(["incomplete"]).state == "incomplete"


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
