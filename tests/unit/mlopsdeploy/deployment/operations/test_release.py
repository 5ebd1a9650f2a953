from __future__ import annotations

import zipfile
from pathlib import Path

import pytest
from pyinfra.api import FileUploadCommand

from mlopsdeploy.deployment.control.bundle import ReleaseBundle
from mlopsdeploy.deployment.facts.release import (
    ReleaseFiles,
    ReleaseIndex,
    ReleaseIntegrity,
    Releases,
    ReleaseSeal,
    Seal,
)
from mlopsdeploy.deployment.operations.release import (
    current_release,
    release_sealed,
    release_staged,
    releases_pruned,
)

BASE = "/home/u/mlopsdeploy"


@pytest.fixture
def bundle(tmp_path: Path) -> ReleaseBundle:
    files = {}
    for rel in ("model/config.json", "model/manifest.json"):
        path = tmp_path / rel.replace("/", "_")
        path.write_text(rel)
        files[rel] = path
    wheel = tmp_path / "app.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr("app/__init__.py", "")
        archive.writestr("app/routes.py", "ROUTES = []\n")
    files["app.whl"] = wheel
    return ReleaseBundle(id="r-new", files=files, model_version="v1")


def uploaded(commands: list) -> list[str]:
    return [c.dest for c in commands if isinstance(c, FileUploadCommand)]


def shell(commands: list) -> list[str]:
    return [c for c in commands if isinstance(c, str)]


def on_host(bundle: ReleaseBundle, changes: dict[str, str | None] | None = None) -> ReleaseFiles:
    """The fact as a host with ``bundle`` staged would answer it, with ``changes`` applied."""
    digests = dict(bundle.digests)
    for rel, digest in (changes or {}).items():
        if digest is None:
            del digests[rel]
        else:
            digests[rel] = digest
    return ReleaseFiles(digests=digests, complete=True)


ROOT = f"{BASE}/releases/r-new"
UNPACK = "python3 -m zipfile -e app.whl .app.new"


def test_intact_release_is_no_change(run_op, bundle) -> None:
    facts = {ReleaseIntegrity: on_host(bundle)}
    assert run_op(release_staged, facts, base=BASE, bundle=bundle) == []


def test_absent_release_is_pushed_unpacked_and_verified_on_the_host(run_op, bundle) -> None:
    facts = {ReleaseIntegrity: ReleaseFiles(digests=None), ReleaseSeal: Seal()}
    commands = run_op(release_staged, facts, base=BASE, bundle=bundle)
    assert uploaded(commands) == [
        f"{ROOT}/app.whl",
        f"{ROOT}/model/config.json",
        f"{ROOT}/model/manifest.json",
    ]
    assert any(UNPACK in c for c in shell(commands))
    sealing = run_op(release_sealed, facts, base=BASE, bundle=bundle)
    assert uploaded(sealing) == [f"{ROOT}/SHA256SUMS"]
    text = shell(sealing)
    verify = text.index(f"cd {ROOT} && sha256sum --quiet -c SHA256SUMS")
    assert text.index(f"touch {ROOT}/.complete") > verify  # only a verified release is complete


def test_corrupt_model_file_is_repushed_alone(run_op, bundle) -> None:
    facts = {ReleaseIntegrity: on_host(bundle, {"model/config.json": "0" * 64})}
    commands = run_op(release_staged, facts, base=BASE, bundle=bundle)
    assert uploaded(commands) == [f"{ROOT}/model/config.json"]
    assert not any(UNPACK in c for c in shell(commands))


def test_damaged_app_code_is_unpacked_again_from_the_wheel(run_op, bundle) -> None:
    facts = {ReleaseIntegrity: on_host(bundle, {"app/app/routes.py": "0" * 64})}
    commands = run_op(release_staged, facts, base=BASE, bundle=bundle)
    assert uploaded(commands) == []
    assert any(UNPACK in c and c.endswith("mv -T .app.new app") for c in shell(commands))


def test_deleted_app_dir_is_unpacked_again(run_op, bundle) -> None:
    gone: dict[str, str | None] = {"app/app/__init__.py": None, "app/app/routes.py": None}
    commands = run_op(
        release_staged, {ReleaseIntegrity: on_host(bundle, gone)}, base=BASE, bundle=bundle
    )
    assert any(UNPACK in c for c in shell(commands))


def test_extra_file_is_removed(run_op, bundle) -> None:
    in_model = on_host(bundle, {"model/evil.bin": "1" * 64})
    commands = run_op(release_staged, {ReleaseIntegrity: in_model}, base=BASE, bundle=bundle)
    assert f"rm -rf {ROOT}/model/evil.bin" in shell(commands)[0]
    in_app = on_host(bundle, {"app/app/sitecustomize.py": "1" * 64})
    commands = run_op(release_staged, {ReleaseIntegrity: in_app}, base=BASE, bundle=bundle)
    assert any(UNPACK in c for c in shell(commands))  # app/ is replaced whole


def test_missing_checksums_file_is_pushed_again_by_the_seal_alone(run_op, bundle) -> None:
    facts = {ReleaseIntegrity: on_host(bundle, {"SHA256SUMS": None}), ReleaseSeal: Seal()}
    # The stage step (whose change restarts the app) has nothing to do: the app never reads it.
    assert run_op(release_staged, facts, base=BASE, bundle=bundle) == []
    commands = run_op(release_sealed, facts, base=BASE, bundle=bundle)
    assert uploaded(commands) == [f"{ROOT}/SHA256SUMS"]
    assert shell(commands)[-1] == f"touch {ROOT}/.complete"


def test_stage_interrupted_before_its_marker_is_verified_and_marked(run_op, bundle) -> None:
    unmarked = ReleaseFiles(digests=dict(bundle.digests), complete=False)
    written = Seal(checksums=bundle.digests["SHA256SUMS"], complete=False)
    facts = {ReleaseIntegrity: unmarked, ReleaseSeal: written}
    assert run_op(release_staged, facts, base=BASE, bundle=bundle) == []
    commands = run_op(release_sealed, facts, base=BASE, bundle=bundle)
    assert uploaded(commands) == []
    assert shell(commands) == [
        f"cd {ROOT} && sha256sum --quiet -c SHA256SUMS",
        f"touch {ROOT}/.complete",
    ]


def test_sealed_release_is_no_change(run_op, bundle) -> None:
    sealed = Seal(checksums=bundle.digests["SHA256SUMS"], complete=True)
    assert run_op(release_sealed, {ReleaseSeal: sealed}, base=BASE, bundle=bundle) == []


def test_bundle_checksums_cover_every_file_including_the_unpacked_app(bundle) -> None:
    lines = bundle.checksums.splitlines()
    expected = sorted([*bundle.files, "app/app/__init__.py", "app/app/routes.py"])
    assert [line.split("  ")[1] for line in lines] == expected
    assert set(bundle.digests) == {*expected, "SHA256SUMS"}


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
