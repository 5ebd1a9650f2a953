"""The demo's stand-in: started once beside the VM, reused while it answers, labelled by name."""

from __future__ import annotations

import contextlib
import os
import signal
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from mlopsdeploy.testbed.demo import DemoStandIn, ensure_standin, standin_source


@dataclass
class FakeVM:
    """Only what the demo reads of a TestVM: the host side of its link (loopback here)."""

    host_address: str = "127.0.0.1"


@pytest.fixture
def started(tmp_path: Path) -> Iterator[list[DemoStandIn]]:
    """Stand-ins a test started; each is stopped afterwards."""
    standins: list[DemoStandIn] = []
    yield standins
    for standin in standins:
        with contextlib.suppress(ProcessLookupError):
            os.kill(standin.pid, signal.SIGTERM)


def test_the_standin_starts_once_and_is_reused(tmp_path: Path, started: list[DemoStandIn]) -> None:
    first = ensure_standin(FakeVM(), tmp_path)  # type: ignore[arg-type]
    started.append(first)
    assert first.url.startswith("http://127.0.0.1:")
    assert stat.S_IMODE(first.token_file.stat().st_mode) == 0o600
    token = first.token_file.read_text()
    answer = httpx.post(
        f"{first.url}/v1/chat/completions",
        json={"messages": [{"role": "user", "content": "hi"}]},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert answer.status_code == 200  # it demands the token the deploy hands the app
    again = ensure_standin(FakeVM(), tmp_path)  # type: ignore[arg-type]
    assert again == first
    assert "Inference API stand-in" in standin_source(first)
    assert "not Hugging Face" in standin_source(first)


def test_a_standin_that_is_gone_is_started_again(
    tmp_path: Path, started: list[DemoStandIn]
) -> None:
    first = ensure_standin(FakeVM(), tmp_path)  # type: ignore[arg-type]
    started.append(first)
    os.kill(first.pid, signal.SIGTERM)
    with contextlib.suppress(ChildProcessError):  # already reaped: gone all the same
        os.waitpid(first.pid, 0)
    second = ensure_standin(FakeVM(), tmp_path)  # type: ignore[arg-type]
    started.append(second)
    assert second.pid != first.pid
    assert httpx.get(f"{second.url}/_standin/mode").json() == {"mode": "ok"}
