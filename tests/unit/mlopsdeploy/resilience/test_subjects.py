from __future__ import annotations

import json
import platform
import subprocess
from pathlib import Path

import pytest

from mlopsdeploy.config import HostConfig
from mlopsdeploy.deployment.control.host_trust import mark_confirmed, mark_unconfirmed
from mlopsdeploy.deployment.results import DeployOptions, DeployResult, HostResult
from mlopsdeploy.model.manifest import MANIFEST_NAME, verify, write_manifest
from mlopsdeploy.resilience import subjects
from mlopsdeploy.resilience.experiment import DeployRequest
from mlopsdeploy.resilience.real_vm import CommandMachine
from mlopsdeploy.resilience.subjects import (
    HttpStandInSwitch,
    LibraryDeployer,
    deployed_subject,
    host_system,
    snapshot_app,
)
from mlopsdeploy.testing.standin import StandIn


def test_http_switch_fails_a_stand_in_in_another_thread_through_its_control_port() -> None:
    with StandIn(control_port=0) as standin:
        assert standin.control_url is not None
        switch = HttpStandInSwitch(standin.control_url)
        switch.set_mode("down")
        assert standin.mode == "down"
        switch.set_mode("ok")
        assert standin.mode == "ok"


def test_a_tagged_release_is_the_same_model_under_a_new_manifest(tmp_path: Path) -> None:
    model = tmp_path / "model"
    model.mkdir()
    (model / "weights.bin").write_bytes(b"\x00" * 64)
    write_manifest(model, "v1")
    cfg = HostConfig(name="vm", address="10.213.9.2", own_key=tmp_path / "key")
    deployer = LibraryDeployer(cfg, model_dir=model, app_dir=tmp_path, scratch=tmp_path / "s")

    variant = deployer._variant("disk-full-1234")

    assert verify(variant) == []
    manifest = json.loads((variant / MANIFEST_NAME).read_text())
    assert manifest["version"] == "v1" and manifest["release_tag"] == "disk-full-1234"
    assert (variant / "weights.bin").stat().st_ino == (model / "weights.bin").stat().st_ino
    assert json.loads((model / MANIFEST_NAME).read_text()).get("release_tag") is None
    assert deployer._variant("disk-full-1234") == variant


def test_app_snapshot_leaves_build_debris_behind(tmp_path: Path) -> None:
    app = tmp_path / "app"
    (app / "src" / "app" / "__pycache__").mkdir(parents=True)
    (app / "src" / "app" / "__init__.py").write_text("")
    (app / "src" / "app" / "__pycache__" / "x.pyc").write_bytes(b"")
    (app / "pyproject.toml").write_text("[project]\n")
    copy = snapshot_app(app, tmp_path / "copy")
    assert (copy / "src" / "app" / "__init__.py").is_file()
    assert not (copy / "src" / "app" / "__pycache__").exists()


class LocalGuest:
    """The control machine's own shell standing in for a guest's."""

    def sh(self, command: str) -> str:
        return subprocess.run(["sh", "-c", command], capture_output=True, text=True).stdout


def test_host_system_names_os_release_and_python() -> None:
    pretty = platform.freedesktop_os_release()["PRETTY_NAME"]
    python3 = subprocess.run(["python3", "-V"], capture_output=True, text=True).stdout.strip()
    assert host_system(LocalGuest()) == f"{pretty}, {python3}"


@pytest.mark.parametrize(
    ("disposable", "vouched"),
    [
        pytest.param(False, False, id="real target: its provider re-imaged it, nobody vouches"),
        pytest.param(True, True, id="testbed VM: the suite made and re-imaged it itself"),
    ],
)
def test_only_a_disposable_hosts_new_host_key_is_vouched_for(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, disposable: bool, vouched: bool
) -> None:
    """A real target has machine controls too (its hosts.toml's reimage_command): that must not
    make the suite vouch for the key the re-image gave it, or the token goes to a host nobody
    identified."""
    cfg = HostConfig(
        name="team10",
        address="vm.example",
        own_key=tmp_path / "key",
        known_hosts=tmp_path / "known_hosts",
        reimage_command="provider rebuild team10",
    )
    asked: list[DeployOptions] = []

    def deploy(hosts: list[HostConfig], options: DeployOptions) -> DeployResult:
        asked.append(options)
        return DeployResult([HostResult(host=cfg.name, url=cfg.url, ok=True)])

    monkeypatch.setattr(subjects, "deploy", deploy)
    subject = deployed_subject(
        cfg,
        tmp_path,
        DeployOptions().app_dir,
        tmp_path / "scratch",
        machine=CommandMachine(cfg),
        disposable=disposable,
    )
    try:
        assert subject.deploy(DeployRequest("recover", accept_new_host_key=True)).ok
    finally:
        subject.probe.close()
    (options,) = asked
    assert (options.accept_new_host_key, options.unconfirmed_host_key) == (vouched, not vouched)


def test_a_subjects_unconfirmed_host_key_is_the_one_its_deploys_recorded(tmp_path: Path) -> None:
    """What the experiment expects of the API product follows the record the deploy reads."""
    cfg = HostConfig(
        name="team10",
        address="vm.example",
        own_key=tmp_path / "key",
        known_hosts=tmp_path / "known_hosts",
    )
    subject = deployed_subject(cfg, tmp_path, DeployOptions().app_dir, tmp_path / "scratch")
    try:
        assert subject.unconfirmed_host_key() is None
        mark_unconfirmed(cfg, "SHA256:new")
        assert subject.unconfirmed_host_key() == "SHA256:new"
        mark_confirmed(cfg)
        assert subject.unconfirmed_host_key() is None
    finally:
        subject.probe.close()
