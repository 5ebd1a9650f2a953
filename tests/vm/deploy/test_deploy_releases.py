"""The deploy on a VM that is not a copy of the control machine: Debian 13 with Python 3.13.

The lock and the wheelhouse are made for the host's own Python (``pip download
--python-version 3.13 --platform manylinux_...``), which no bookworm VM ever exercises.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from deploy_helpers import Control, classify

from mlopsdeploy.deployment.api import deploy
from mlopsdeploy.testbed.image import Image
from mlopsdeploy.testbed.pytest_plugin import VMFactory

pytestmark = pytest.mark.vm


def test_trixie_vm_gets_a_python_3_13_runtime_and_serves_correct_labels(
    test_vm_factory: VMFactory,
    release_image: Callable[[str], Image],
    fresh_control: Control,
    sentiment_model_dir: Path,
) -> None:
    vm = test_vm_factory(image=release_image("trixie"))
    cfg = fresh_control.host(vm)
    result = deploy([cfg], fresh_control.options(sentiment_model_dir)).hosts[0]
    assert result.ok, result.error
    python = "~/mlopsdeploy/venv/bin/python -c 'import sys; print(sys.version_info[:2])'"
    venv = vm.run(python, key=fresh_control.key)
    assert venv.stdout.strip() == "(3, 13)"
    assert classify(cfg, ["I am so happy today!", "This is the worst day ever."]) == [
        "POSITIVE",
        "NEGATIVE",
    ]
    again = deploy([cfg], fresh_control.options(sentiment_model_dir)).hosts[0]
    assert again.ok and again.changed == []
