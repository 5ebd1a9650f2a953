"""A host whose Python cannot run the pinned stack is refused before anything changes on it."""

from __future__ import annotations

import importlib.metadata as md
from pathlib import Path
from typing import Any

import pytest
from packaging.specifiers import SpecifierSet

from mlopsdeploy.config import HostConfig
from mlopsdeploy.deployment import api
from mlopsdeploy.deployment.control.python_support import (
    Installed,
    UnsupportedPython,
    check_python,
    manylinux_platforms,
    requires_python,
    version_specific,
)
from mlopsdeploy.deployment.control.wheelhouse import APP_DISTRIBUTION, pinned_requirements
from mlopsdeploy.deployment.facts.runtime import PythonTarget, TargetPython
from mlopsdeploy.deployment.results import DeployOptions, HostResult
from mlopsdeploy.errors import DeployError

BULLSEYE = PythonTarget(version="3.9", machine="x86_64", libc="2.31")
TRIXIE = PythonTarget(version="3.13", machine="x86_64", libc="2.41")


class PythonHost:
    """A connected host as far as the preflight asks: only its python3."""

    def __init__(self, python: PythonTarget) -> None:
        self.python = python

    def get_fact(self, fact: type) -> PythonTarget:
        assert fact is TargetPython
        return self.python


def test_python_3_9_is_refused_naming_the_version_a_pin_and_what_works() -> None:
    with pytest.raises(UnsupportedPython) as refused:
        check_python("3.9", APP_DISTRIBUTION)
    message = str(refused.value)
    assert "the host's Python 3.9 cannot run the pinned stack" in message
    assert "needs Python >=3.11" in message
    assert message.endswith("its pins allow Python 3.11-3.14")


@pytest.mark.parametrize("version", ["3.11", "3.13"])
def test_bookworm_and_trixie_pythons_pass_the_check(version: str) -> None:
    check_python(version, APP_DISTRIBUTION)


def test_trixie_lock_pins_what_only_python_3_13_needs() -> None:
    """gradio needs audioop-lts from 3.13 on; it is not installed here, yet must be pinned."""
    pins = dict(line.split("==") for line in pinned_requirements(TRIXIE).text.split())
    assert pins["audioop-lts"] == "0.2.2"
    assert "audioop-lts" not in pinned_requirements(PythonTarget("3.11", "x86_64", "2.36")).text


def test_a_newer_glibc_also_accepts_older_manylinux_wheels() -> None:
    """pip matches --platform literally: 2_41 alone would miss every manylinux_2_28 wheel."""
    tags = manylinux_platforms("2.41", "x86_64")
    assert tags[0] == "manylinux_2_41_x86_64"
    assert {"manylinux_2_28_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64"} <= set(tags)
    assert "manylinux_2_42_x86_64" not in tags
    assert "manylinux2014_x86_64" not in manylinux_platforms("2.12", "x86_64")


def test_only_wheels_built_for_one_cpython_need_checking() -> None:
    pins = version_specific("torch==2.13.0+cpu\nfastapi==0.1\ntokenizers==0.1\n")
    assert pins == ["torch==2.13.0+cpu"]  # fastapi is pure, tokenizers abi3


def _host(tmp_path: Path) -> HostConfig:
    return HostConfig(
        name="old-vm", address="a", own_key=tmp_path / "own", default_key=tmp_path / "d"
    )


def test_preflight_refuses_before_any_wheel_is_fetched(tmp_path: Path) -> None:
    options = DeployOptions(cache_dir=tmp_path / "cache")
    with pytest.raises(DeployError) as refused:
        api.prepare_runtime(PythonHost(BULLSEYE), _host(tmp_path), options)  # type: ignore[arg-type]
    assert str(refused.value).startswith("old-vm: the host's Python 3.9 cannot run")
    assert str(refused.value).endswith("nothing was changed on the host")
    assert not (tmp_path / "cache").exists()


def test_bootstrap_with_the_default_key_waits_for_the_preflight(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first login would authorize the own key: a refused host must not get even that."""
    cfg = _host(tmp_path)
    planned: list[Any] = []

    def run_pyinfra(cfg: HostConfig, key: Path, result: HostResult, make: Any) -> None:
        planned.append(make(PythonHost(BULLSEYE)))

    monkeypatch.setattr(api, "settle_host_key", lambda cfg, accept, unconfirmed: None)
    monkeypatch.setattr(api, "choose_login_key", lambda cfg: cfg.default_key)
    monkeypatch.setattr(api, "run_pyinfra", run_pyinfra)
    preflight = lambda target: api.prepare_runtime(target, cfg, DeployOptions(cache_dir=tmp_path))  # noqa: E731
    with pytest.raises(DeployError, match=r"Python 3\.9"):
        api.ensure_access(cfg, preflight=preflight)
    assert planned == []


def test_the_directory_listing_finds_what_importlib_finds() -> None:
    """`Installed` finds distributions by their .dist-info names without reading metadata: each
    pin of the lock must be the version importlib.metadata itself reports, and every
    Requires-Python importlib reads for the closure must be there too."""
    installed = Installed()
    lock = pinned_requirements(TRIXIE)
    for line in lock.text.split():
        name, _, version = line.partition("==")
        if name != "audioop-lts":  # pinned for other Pythons, not installed here
            assert md.distribution(name).version == version
            assert installed.get(name) is not None
    specs = requires_python(APP_DISTRIBUTION)
    app = md.distribution(APP_DISTRIBUTION)
    assert f"mlopsdeploy-app=={app.version}" in specs
    fastapi = md.distribution("fastapi")
    assert str(specs[f"fastapi=={fastapi.version}"]) == str(
        SpecifierSet(fastapi.metadata["Requires-Python"])
    )
    assert installed.get("no-such-distribution-anywhere") is None
