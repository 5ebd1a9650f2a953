"""`--image` picks the Debian release of every test VM in a run (the trixie matrix)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

RELEASE_TEST = """
def test_release(request):
    assert request.config.getoption("image") == "trixie"
"""


def _pytest(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "test_release.py").write_text(RELEASE_TEST)
    return subprocess.run(
        [
            *(sys.executable, "-m", "pytest", "-p", "mlopsdeploy.testbed.pytest_plugin"),
            *("-p", "no:cacheprovider", "-q", "--rootdir", str(tmp_path), *args),
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_image_option_names_a_release(tmp_path: Path) -> None:
    result = _pytest(tmp_path, "--image", "trixie")
    assert result.returncode == 0, result.stdout + result.stderr


def test_an_unknown_release_is_a_usage_error_listing_the_known_ones(tmp_path: Path) -> None:
    result = _pytest(tmp_path, "--image", "jammy")
    assert result.returncode == 4
    assert "--image: invalid choice: 'jammy'" in result.stderr
    assert all(release in result.stderr for release in ("bookworm", "bullseye", "trixie"))
