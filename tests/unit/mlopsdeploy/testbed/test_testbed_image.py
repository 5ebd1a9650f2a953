"""The image cache key covers everything that shapes the image, and nothing else."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from mlopsdeploy.testbed.image import Image, Recipe
from mlopsdeploy.testbed.keys import default_key, public_key
from mlopsdeploy.testbed.state import State

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExample default"


def test_digest_is_stable_for_the_same_recipe_and_key() -> None:
    assert Recipe().digest(KEY) == Recipe().digest(KEY)


@pytest.mark.parametrize(
    "change",
    [
        {"packages": (*Recipe().packages, "curl")},
        {"mirrors": ("deb http://mirror.example/debian bookworm main",)},
        {"customize_script": Recipe().customize_script + "\ntrue\n"},
        {"user": "someone-else"},
    ],
)
def test_digest_changes_with_the_recipe(change: dict[str, object]) -> None:
    assert dataclasses.replace(Recipe(), **change).digest(KEY) != Recipe().digest(KEY)  # type: ignore[arg-type]


def test_digest_changes_with_the_default_key() -> None:
    assert Recipe().digest(KEY) != Recipe().digest(KEY.replace("Example", "Other"))


def test_default_key_is_made_once_and_private(tmp_path: Path) -> None:
    state = State(tmp_path)
    key = default_key(state)
    assert key.stat().st_mode & 0o777 == 0o600
    assert public_key(key).startswith("ssh-ed25519 ")
    assert default_key(state) == key
    assert Image(state).digest == Image(state).digest


def test_mmdebstrap_gets_packages_hook_and_explicit_mirrors(tmp_path: Path) -> None:
    """Explicit mirrors matter: without them mmdebstrap would read sources from stdin."""
    image = Image(State(tmp_path))
    argv = image._mmdebstrap_argv(tmp_path / "rootfs")
    assert argv[:2] == ["mmdebstrap", "--mode=root"]
    assert f"--include={','.join(Recipe().packages)}" in argv
    hook = next(arg for arg in argv if arg.startswith("--customize-hook="))
    assert '"$1"' in hook and str(tmp_path / "keys" / "default.pub") in hook
    assert argv[-len(Recipe().mirrors) :] == list(Recipe().mirrors)
