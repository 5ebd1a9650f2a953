"""`python -m app` as a process: serves on its port, logs without the token, stops on SIGTERM."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from mlopsdeploy.testing.standin import StandIn

START_DEADLINE_S = 240  # importing torch, transformers and gradio on a busy 2-core machine


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def app_environment(**extra: str) -> dict[str, str]:
    environ = {**os.environ, **extra}
    # These would block the Inference API client even on loopback.
    for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_TOKEN"):
        environ.pop(name, None)
    return {**environ, **extra}


def wait_until_live(process: subprocess.Popen[bytes], url: str, log: Path) -> None:
    deadline = time.monotonic() + START_DEADLINE_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"the app exited with {process.returncode}:\n{log.read_text()}")
        try:
            if httpx.get(f"{url}/livez", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    pytest.fail(f"the app did not answer /livez within {START_DEADLINE_S} s:\n{log.read_text()}")


@pytest.fixture
def standin(api_token: str) -> Iterator[StandIn]:
    with StandIn(token=api_token, slow_seconds=10) as standin:
        yield standin


def test_serves_then_stops_cleanly_on_sigterm_without_logging_the_token(
    always_positive_model: Path, standin: StandIn, api_token: str, tmp_path: Path
) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp_path / "app.log"
    environ = app_environment(HF_TOKEN=api_token, APP_API_TIMEOUT="1", APP_LOG_LEVEL="debug")
    command = [sys.executable, "-m", "app", "--model", str(always_positive_model)]
    command += ["--port", str(port), "--api-model", standin.url]
    with log.open("wb") as output:
        process = subprocess.Popen(command, env=environ, stdout=output, stderr=subprocess.STDOUT)
    try:
        wait_until_live(process, url, log)
        assert httpx.get(f"{url}/readyz").status_code == 503
        sentiment = httpx.post(f"{url}/api/sentiment", json={"text": "I am so happy today!"})
        assert sentiment.json()["label"] == "POSITIVE"
        assert httpx.post(f"{url}/api/generate", json={"prompt": "hi"}).status_code == 200
        standin.mode = "unauthorized"
        assert httpx.post(f"{url}/api/generate", json={}).json()["error"] == "api_unauthorized"
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    text = log.read_text()
    assert "Inference API call failed: api_unauthorized" in text
    assert "Application shutdown complete" in text
    assert api_token not in text


@pytest.mark.parametrize(
    ("argv", "environ", "message"),
    [
        (["--port", "eighty"], {}, "argument --port: invalid int value: 'eighty'"),
        ([], {"APP_MAX_TEXTS": "many"}, "APP_MAX_TEXTS='many' is not a valid int"),
    ],
)
def test_bad_settings_exit_2_with_a_message(
    argv: list[str], environ: dict[str, str], message: str
) -> None:
    finished = subprocess.run(
        [sys.executable, "-m", "app", *argv],
        env=app_environment(**environ),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert finished.returncode == 2
    assert message in finished.stderr
