from __future__ import annotations

from pathlib import Path

import pytest
from pyinfra.api import FileUploadCommand

from mlopsdeploy.deployment.control.bundle import ReleaseBundle
from mlopsdeploy.deployment.facts.release import (
    ReleaseCheck,
    ReleaseIndex,
    ReleaseIntegrity,
    Releases,
)
from mlopsdeploy.deployment.operations.release import (
    current_release,
    release_staged,
    releases_pruned,
)

BASE = "/home/u/mlopsdeploy"


@pytest.fixture
def bundle(tmp_path: Path) -> ReleaseBundle:
    files = {}
    for rel in ("app.whl", "model/config.json", "model/manifest.json"):
        path = tmp_path / rel.replace("/", "_")
        path.write_text(rel)
        files[rel] = path
    return ReleaseBundle(id="r-new", files=files, model_version="v1")


def uploaded(commands: list) -> list[str]:
    return [c.dest for c in commands if isinstance(c, FileUploadCommand)]


def test_intact_release_is_no_change(run_op, bundle) -> None:
    facts = {ReleaseIntegrity: ReleaseCheck("ok")}
    assert run_op(release_staged, facts, base=BASE, bundle=bundle) == []


def test_absent_release_is_pushed_and_verified_on_the_host(run_op, bundle) -> None:
    commands = run_op(
        release_staged, {ReleaseIntegrity: ReleaseCheck("absent")}, base=BASE, bundle=bundle
    )
    root = f"{BASE}/releases/r-new"
    assert uploaded(commands) == [
        f"{root}/app.whl",
        f"{root}/model/config.json",
        f"{root}/model/manifest.json",
        f"{root}/SHA256SUMS",
    ]
    text = [c for c in commands if isinstance(c, str)]
    verify = text.index(f"cd {root} && sha256sum --quiet -c SHA256SUMS")
    complete = text.index(f"touch {root}/.complete")
    assert verify < complete  # only a verified release is marked complete


def test_corrupt_model_file_is_repushed_alone(run_op, bundle) -> None:
    facts = {ReleaseIntegrity: ReleaseCheck("corrupt", bad=["model/config.json"])}
    commands = run_op(release_staged, facts, base=BASE, bundle=bundle)
    assert uploaded(commands) == [
        f"{BASE}/releases/r-new/model/config.json",
        f"{BASE}/releases/r-new/SHA256SUMS",
    ]


def test_bundle_checksums_cover_every_file(bundle) -> None:
    lines = bundle.checksums.splitlines()
    assert [line.split("  ")[1] for line in lines] == sorted(bundle.files)


def test_switch_keeps_old_current_as_previous(run_op) -> None:
    facts = {Releases: ReleaseIndex(current="r-old", previous=None, ids=["r-old", "r-new"])}
    prev, cur = run_op(current_release, facts, base=BASE, release_id="r-new")
    assert "releases/r-old" in prev and prev.endswith(f"mv -T {BASE}/.previous.new {BASE}/previous")
    assert "releases/r-new" in cur and cur.endswith(f"mv -T {BASE}/.current.new {BASE}/current")


def test_switch_to_current_release_is_no_change(run_op) -> None:
    facts = {Releases: ReleaseIndex(current="r-new", ids=["r-new"])}
    assert run_op(current_release, facts, base=BASE, release_id="r-new") == []


def test_cold_switch_has_no_previous(run_op) -> None:
    facts = {Releases: ReleaseIndex(current=None, ids=["r-new"])}
    (command,) = run_op(current_release, facts, base=BASE, release_id="r-new")
    assert "current" in command and "previous" not in command


def test_prune_keeps_newest_and_never_current_or_previous(run_op) -> None:
    index = ReleaseIndex(current="r2", previous="r1", ids=["r1", "r2", "r3", "r4", "r5"])
    (command,) = run_op(releases_pruned, {Releases: index}, base=BASE, keep=3)
    assert command == f"rm -rf {BASE}/releases/r3 {BASE}/releases/r4"
    small = ReleaseIndex(current="r2", previous="r1", ids=["r1", "r2"])
    assert run_op(releases_pruned, {Releases: small}, base=BASE, keep=3) == []
