"""Online install against a real package index: pypiserver on the control machine serves the
lock's wheels on the VM's link, and the VM installs from it with no wheelhouse pushed."""

from __future__ import annotations

from pathlib import Path

import pytest
from deploy_helpers import Control, classify

from mlopsdeploy.deployment.api import deploy
from mlopsdeploy.deployment.control.wheelhouse import build_wheelhouse, pinned_requirements
from mlopsdeploy.deployment.facts.runtime import PythonTarget
from mlopsdeploy.testbed import TestVM
from mlopsdeploy.testing.package_index import PackageIndex

pytestmark = pytest.mark.vm


def vm_python(vm: TestVM) -> PythonTarget:
    """The VM's python3, as the deploy's TargetPython fact reads it."""
    out = vm.run(
        "python3 -c 'import platform, sys; print(*sys.version_info[:2], platform.libc_ver()[1])'"
    )
    major, minor, libc = out.stdout.split()
    return PythonTarget(version=f"{major}.{minor}", machine="x86_64", libc=libc)


def test_online_host_installs_from_the_index_and_gets_no_wheelhouse(
    test_vm: TestVM, fresh_control: Control, sentiment_model_dir: Path, tmp_path: Path
) -> None:
    python = vm_python(test_vm)
    lock = pinned_requirements(python)
    wheels = build_wheelhouse(fresh_control.cache, lock, python)
    with PackageIndex(wheels, test_vm.host_address, tmp_path / "index.log") as index:
        cfg = fresh_control.host(test_vm, install="online", index_url=index.url)
        first = deploy([cfg], fresh_control.options(sentiment_model_dir)).hosts[0]
        assert first.ok, first.error
        assert classify(cfg, ["I am so happy today!"]) == ["POSITIVE"]
        again = deploy([cfg], fresh_control.options(sentiment_model_dir)).hosts[0]
        served = index.requests()
    assert again.ok and again.changed == []
    # Every pin of the lock was looked up on the index and its wheel fetched from it.
    pins = [line.split("==")[0] for line in lock.text.split()]
    assert all((f"/simple/{name}/", 200) in served for name in pins)
    fetched = [path for path, code in served if path.startswith("/packages/") and code == 200]
    assert len(fetched) >= len(pins)
    on_host = test_vm.run("ls ~/mlopsdeploy", key=fresh_control.key).stdout.split()
    assert "venv" in on_host and "wheelhouse" not in on_host
