from __future__ import annotations

import fcntl
import subprocess
from pathlib import Path

import pytest

from mlopsdeploy.deployment.control import wheelhouse
from mlopsdeploy.deployment.control.bundle import bundled_requirements
from mlopsdeploy.deployment.control.python_support import UnsupportedPython
from mlopsdeploy.deployment.control.wheelhouse import (
    INSTALLER,
    INSTALLER_VERSION,
    _fetch_command,
    build_wheelhouse,
    fetch_installer,
    pinned_requirements,
    wheelhouse_dir,
)
from mlopsdeploy.deployment.facts.runtime import STAMP_NAME, PythonTarget

HERE = PythonTarget(version="3.11", machine="x86_64", libc="2.36")


def test_lock_pins_the_apps_closure_as_installed_here() -> None:
    lock = pinned_requirements(HERE)
    pins = dict(line.split("==") for line in lock.text.split())
    assert {"fastapi", "gradio", "onnxruntime", "tokenizers", "uvicorn"} <= set(pins)
    # The app's own set serves ONNX: torch is its extra, needed only by torch-served models.
    assert not {"torch", "transformers"} & set(pins)
    assert not [name for name in pins if name.startswith("nvidia")]
    assert "mlopsdeploy-app" not in pins and "pytest" not in pins
    assert lock.count == len(pins)


def test_lock_for_a_torch_served_model_pins_the_cpu_torch() -> None:
    pins = dict(
        line.split("==")
        for line in pinned_requirements(HERE, requires=bundled_requirements("torch")).text.split()
    )
    assert pins["torch"] == "2.13.0+cpu"  # the CPU build, never a CUDA one
    assert {"transformers", "onnxruntime", "gradio"} <= set(pins)


def test_lock_digest_depends_on_the_target_python() -> None:
    other = PythonTarget(version="3.12", machine="x86_64", libc="2.39")
    assert pinned_requirements(HERE).digest == pinned_requirements(HERE).digest
    assert pinned_requirements(HERE).digest != pinned_requirements(other).digest


def test_foreign_target_downloads_binary_wheels_for_its_platform(tmp_path: Path) -> None:
    other = PythonTarget(version="3.12", machine="aarch64", libc="2.39")
    command = _fetch_command(other, tmp_path / "lock.txt", tmp_path)
    assert "download" in command
    assert "--platform=manylinux_2_39_aarch64" in command
    assert "--python-version=3.12" in command and "--only-binary=:all:" in command
    assert "wheel" in _fetch_command(HERE, tmp_path / "lock.txt", tmp_path)


def test_wheelhouse_cache_is_keyed_by_the_hosts_glibc(tmp_path: Path) -> None:
    lock = pinned_requirements(HERE)
    older = PythonTarget(version="3.11", machine="x86_64", libc="2.31")
    assert wheelhouse_dir(tmp_path, lock, HERE) != wheelhouse_dir(tmp_path, lock, older)


class FakeFetch:
    """Stands in for pip: checks what the cache looks like *while* a fetch runs, then writes."""

    def __init__(self, out: Path) -> None:
        self.out = out
        self.calls = 0

    def __call__(self, command: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
        self.calls += 1
        lock_file = self.out.with_name(f"{self.out.name}.lock")
        # The builder holds the entry's lock while it fetches.
        with open(lock_file) as handle, pytest.raises(BlockingIOError):
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        assert not list(self.out.glob("*.whl"))  # nothing lands in the shared dir half-done
        dest = Path(command[command.index("-w" if "-w" in command else "-d") + 1])
        (dest / "x-1.0-py3-none-any.whl").write_bytes(b"wheel")
        return subprocess.CompletedProcess(command, 0, "", "")


def test_wheelhouse_is_built_aside_under_a_lock_and_reused(tmp_path: Path, monkeypatch) -> None:
    lock = pinned_requirements(HERE)
    fetch = FakeFetch(wheelhouse_dir(tmp_path, lock, HERE))
    monkeypatch.setattr(wheelhouse.subprocess, "run", fetch)
    killed = fetch.out.with_name(f"{fetch.out.name}.partial-999999")  # a killed builder's
    killed.mkdir(parents=True)
    out = build_wheelhouse(tmp_path, lock, HERE)
    assert (out / "x-1.0-py3-none-any.whl").is_file() and (out / STAMP_NAME).is_file()
    assert build_wheelhouse(tmp_path, lock, HERE) == out and fetch.calls == 1
    assert [p.name for p in out.parent.iterdir() if ".partial" in p.name] == []


def test_installer_is_downloaded_aside_under_a_lock(tmp_path: Path, monkeypatch) -> None:
    out = tmp_path / "installer" / f"{INSTALLER}-{INSTALLER_VERSION}-{HERE.machine}"
    fetch = FakeFetch(out)
    monkeypatch.setattr(wheelhouse.subprocess, "run", fetch)
    assert fetch_installer(tmp_path, HERE) == out / "x-1.0-py3-none-any.whl"
    assert fetch_installer(tmp_path, HERE) == out / "x-1.0-py3-none-any.whl"
    assert fetch.calls == 1


def test_an_accepted_lock_is_kept_for_the_next_deploy_from_this_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    first = wheelhouse.checked_lock(HERE, None, tmp_path)
    assert first == pinned_requirements(HERE)

    def walked(*args: object, **kwargs: object) -> None:
        raise AssertionError("walked the installed metadata again")

    monkeypatch.setattr(wheelhouse, "pinned_requirements", walked)
    monkeypatch.setattr(wheelhouse, "check_python", walked)
    assert wheelhouse.checked_lock(HERE, None, tmp_path) == first
    with pytest.raises(AssertionError, match="walked"):  # another Python: computed
        wheelhouse.checked_lock(PythonTarget("3.12", "x86_64", "2.39"), None, tmp_path)
    with pytest.raises(AssertionError, match="walked"):  # other requirements: computed
        wheelhouse.checked_lock(HERE, ("fastapi",), tmp_path)


def test_installing_or_removing_a_distribution_computes_the_lock_again(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    site = tmp_path / "site"
    site.mkdir()
    monkeypatch.syspath_prepend(str(site))
    first = wheelhouse.checked_lock(HERE, None, tmp_path / "cache")
    (site / "newdist-1.0.dist-info").mkdir()  # what an install adds beside the others
    calls: list[PythonTarget] = []

    def pinned(target: PythonTarget, requires: object = None) -> wheelhouse.Lock:
        calls.append(target)
        return first

    monkeypatch.setattr(wheelhouse, "pinned_requirements", pinned)
    wheelhouse.checked_lock(HERE, None, tmp_path / "cache")
    assert calls == [HERE]


def test_a_python_the_stack_refuses_is_refused_every_time(tmp_path: Path) -> None:
    old = PythonTarget("3.9", "x86_64", "2.31")
    for _ in range(2):
        with pytest.raises(UnsupportedPython):
            wheelhouse.checked_lock(old, None, tmp_path)
    assert not list((tmp_path / "locks").glob("*"))
