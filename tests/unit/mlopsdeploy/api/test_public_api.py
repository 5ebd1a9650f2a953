"""The public API is what __all__ says, each name resolves, and each is documented."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import mlopsdeploy

DOCS = Path(__file__).resolve().parents[4] / "docs" / "deploy.md"


def test_every_exported_name_resolves_and_is_documented() -> None:
    text = DOCS.read_text()
    for name in mlopsdeploy.__all__:
        assert getattr(mlopsdeploy, name) is not None
        assert f"`{name}" in text or f".{name}(" in text, f"{name} is not in docs/deploy.md"


def test_importing_the_package_does_not_load_pyinfra_or_torch() -> None:
    code = "import sys, mlopsdeploy; print('pyinfra' in sys.modules, 'torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]
