"""Helpers of the deploy's end-to-end tests: the control side of a module, its deployed VM, and
app checks.

Kept out of conftest.py so the test modules can import the types for their annotations.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import httpx

from mlopsdeploy.config import HostConfig
from mlopsdeploy.deployment.api import deploy
from mlopsdeploy.deployment.host_commands import systemctl
from mlopsdeploy.deployment.operations import workers
from mlopsdeploy.deployment.results import DeployOptions, HostResult
from mlopsdeploy.model.manifest import read_manifest, write_manifest
from mlopsdeploy.testbed import TestVM
from mlopsdeploy.testbed.target import testbed_host

CANARIES = ["I am so happy today!", "This is the worst day ever."]


@dataclass(frozen=True)
class Control:
    """The control machine's side of one test module: key, known_hosts, token, cache."""

    key: Path
    known_hosts: Path
    token: str
    token_file: Path
    cache: Path

    def host(self, vm: TestVM, **changes: Any) -> HostConfig:
        cfg = testbed_host(vm, key=self.key, known_hosts=self.known_hosts)
        changes.setdefault("hf_token_file", self.token_file)
        return replace(cfg, **changes)

    def options(self, model_dir: Path, **changes: Any) -> DeployOptions:
        return DeployOptions(model_dir=model_dir, cache_dir=self.cache, **changes)


def classify(cfg: HostConfig, texts: list[str]) -> list[str]:
    """Labels the deployed app gives ``texts``, through its public port."""
    answer = httpx.post(f"{cfg.url}/api/sentiment", json={"texts": texts}, timeout=30)
    answer.raise_for_status()
    return [r["label"] for r in answer.json()["results"]]


def served_model_version(cfg: HostConfig) -> str:
    answer = httpx.get(f"{cfg.url}/readyz", timeout=10)
    answer.raise_for_status()
    return str(answer.json()["model_version"])


def model_variant(source: Path, target: Path, version: str, swap_labels: bool = False) -> Path:
    """A copy of the model under a new version; ``swap_labels`` makes it answer every label wrong.

    The manifest is rewritten, so the copy is an *intact* artifact: only the health gate's
    canaries can tell that the swapped one is a bad model.
    """
    shutil.copytree(source, target)
    if swap_labels:
        config_path = target / "config.json"
        config = json.loads(config_path.read_text())
        id2label = config["id2label"]
        config["id2label"] = {
            key: id2label[other]
            for key, other in zip(id2label, reversed(list(id2label)), strict=True)
        }
        config["label2id"] = {label: int(key) for key, label in config["id2label"].items()}
        config_path.write_text(json.dumps(config))
    fields = {
        k: v for k, v in read_manifest(source).items() if k not in ("format", "version", "files")
    }
    write_manifest(target, version=version, **fields)
    return target


def remote(vm: TestVM, control: Control, command: str) -> str:
    """Run ``command`` on the VM as the app user, logged in with the module's own key."""
    return vm.run(command, key=control.key).stdout


@dataclass
class Deployed:
    """A module's VM with the app deployed on it, and the control side that deployed it."""

    vm: TestVM
    cfg: HostConfig
    control: Control
    model_dir: Path

    def redeploy(self) -> HostResult:
        """Deploy the module's model again: it must succeed and label the canaries right."""
        result = deploy([self.cfg], self.control.options(self.model_dir)).hosts[0]
        assert result.ok, result.error
        assert classify(self.cfg, CANARIES) == ["POSITIVE", "NEGATIVE"]
        return result

    def sh(self, command: str) -> str:
        return remote(self.vm, self.control, command)

    def pids(self, cfg: HostConfig | None = None) -> list[str]:
        """Main PIDs of the workers of ``cfg`` (the module's host unless given), in unit order."""
        units = " ".join(workers.worker_units(cfg or self.cfg))
        return self.sh(f"{systemctl('user')} show -p MainPID --value {units}").split()
