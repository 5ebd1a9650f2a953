"""Fixtures of the deploy's end-to-end tests: a control-machine identity per module, and the
module's VM with the app deployed once.

Each module gets its own state (own key, known_hosts, token file) under a temp dir, so tests
never touch the user's ~/.local/state and a recycled VM address never meets a stale host key.
The wheelhouse/app-wheel cache is shared by the session: it is keyed by content.
"""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest
from deploy_helpers import Control, Deployed

from mlopsdeploy.deployment.control.ssh_login import ensure_keypair
from mlopsdeploy.testbed import TestVM


@pytest.fixture(scope="session")
def deploy_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("deploy-cache")


def new_control(root: Path, cache: Path) -> Control:
    root.mkdir(parents=True, exist_ok=True)
    token = "hf_" + secrets.token_hex(16)
    token_file = root / "hf_token"
    token_file.write_text(token)
    token_file.chmod(0o600)
    return Control(
        key=ensure_keypair(root / "id_ed25519"),
        known_hosts=root / "known_hosts",
        token=token,
        token_file=token_file,
        cache=cache,
    )


@pytest.fixture(scope="module")
def control(tmp_path_factory: pytest.TempPathFactory, deploy_cache: Path) -> Control:
    """One identity for a module whose tests share a VM."""
    return new_control(tmp_path_factory.mktemp("control"), deploy_cache)


@pytest.fixture
def fresh_control(tmp_path: Path, deploy_cache: Path) -> Control:
    """One identity per test, for tests on fresh VMs (their addresses get reused)."""
    return new_control(tmp_path / "control", deploy_cache)


@pytest.fixture(scope="module")
def deployed(module_vm: TestVM, control: Control, sentiment_model_dir: Path) -> Deployed:
    """The module's VM with the app deployed once (the expensive part), shared by its tests."""
    state = Deployed(module_vm, control.host(module_vm), control, sentiment_model_dir)
    state.redeploy()
    return state
