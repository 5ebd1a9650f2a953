"""One deployed test VM per module, a loopback webhook receiver, and watchdogs to run against it."""

from __future__ import annotations

import json
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from watched_vm import Receiver, WatchedHost

from mlopsdeploy.deployment.api import deploy
from mlopsdeploy.deployment.control.ssh_login import ensure_keypair
from mlopsdeploy.deployment.results import DeployOptions
from mlopsdeploy.model.manifest import read_manifest, write_manifest
from mlopsdeploy.resilience.subjects import deployed_target
from mlopsdeploy.testbed.image import Image
from mlopsdeploy.testbed.machine import TestVM
from mlopsdeploy.testbed.pytest_plugin import machine_name
from mlopsdeploy.testbed.target import testbed_host
from mlopsdeploy.watchdog.background import write_hosts_file


@pytest.fixture(scope="module")
def watched_host(
    testbed_image: Image, sentiment_model_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[WatchedHost]:
    """A test VM with the app deployed, described in a hosts file the watchdog reads."""
    work = tmp_path_factory.mktemp("watched")
    vm = TestVM(machine_name(), testbed_image)
    try:
        vm.up()
        key = ensure_keypair(work / "own-key")
        cfg = testbed_host(vm, key=key, known_hosts=work / "known_hosts")
        options = DeployOptions(model_dir=sentiment_model_dir, accept_new_host_key=True)
        result = deploy([cfg], options).hosts[0]
        assert result.ok, f"initial deploy failed: {result.error}"
        hosts_file = write_hosts_file(work / "hosts.toml", [cfg])
        target = deployed_target(cfg, machine=vm, api=None)
        yield WatchedHost(vm, cfg, target, hosts_file, sentiment_model_dir)
    finally:
        vm.destroy()


@pytest.fixture
def webhook() -> Iterator[Receiver]:
    server = Receiver()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture(scope="module")
def mislabelling_model(sentiment_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The real model with its two labels swapped: intact by its manifest, wrong on every canary."""
    out = tmp_path_factory.mktemp("swapped") / "model"
    shutil.copytree(sentiment_model_dir, out)
    config_path = out / "config.json"
    config = json.loads(config_path.read_text())
    id2label = config["id2label"]
    (first, second) = sorted(id2label)
    config["id2label"] = {first: id2label[second], second: id2label[first]}
    config["label2id"] = {label: int(i) for i, label in config["id2label"].items()}
    config_path.write_text(json.dumps(config, indent=2))
    manifest = read_manifest(sentiment_model_dir)
    extra = {k: v for k, v in manifest.items() if k not in {"format", "version", "files"}}
    write_manifest(out, f"{manifest['version']}-labels-swapped", **extra)
    return out
