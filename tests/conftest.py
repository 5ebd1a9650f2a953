"""Fixtures shared by every test layer: the offline model, the testbed and resilience plugins."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent

pytest_plugins = [
    "mlopsdeploy.testbed.pytest_plugin",
    "mlopsdeploy.resilience.pytest_plugin",
]


@pytest.fixture(scope="session")
def sentiment_model_dir() -> Path:
    """The offline sentiment model built by `python -m mlopsdeploy.model build`.

    Label assertions are only honest against a real trained model, so tests that need one skip
    (with the command to build it) rather than fall back to anything fake. `make test` builds it
    before running the suite, so in CI this never skips.
    """
    path = Path(os.environ.get("MLOPSDEPLOY_MODEL_DIR", REPO_ROOT / "build" / "model"))
    if not (path / "manifest.json").is_file():
        pytest.skip(
            f"offline model missing at {path}: run `make model` "
            "(python -m mlopsdeploy.model build --out build/model)"
        )
    return path
