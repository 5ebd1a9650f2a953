"""The Inference API stand-in, driven by the real huggingface_hub InferenceClient.

What matters is that the client a user's app runs sees exactly the errors the real API gives in
each mode: that is what makes the app's tests against the stand-in honest.
"""

from __future__ import annotations

import os
import re
import secrets
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import httpx2
import pytest
from huggingface_hub import InferenceClient
from huggingface_hub.errors import HfHubHTTPError, InferenceTimeoutError

from mlopsdeploy.testing.standin import MODES, StandIn

MESSAGES = [{"role": "user", "content": "Hello there"}]


@pytest.fixture
def token() -> str:
    return "hf_" + secrets.token_hex(16)


@pytest.fixture
def standin(token: str) -> Iterator[StandIn]:
    with StandIn(token=token, slow_seconds=10) as standin:
        yield standin


@pytest.fixture
def client(standin: StandIn, token: str) -> InferenceClient:
    return InferenceClient(standin.url, token=token, timeout=1.0)


def test_chat_completion_answers_the_last_user_message(client: InferenceClient) -> None:
    output = client.chat_completion(MESSAGES, max_tokens=50)
    assert output.choices[0].message.content == "Stand-in answer to: Hello there"
    assert output.choices[0].finish_reason == "stop"


def test_chat_completion_streams_the_same_answer_in_chunks(client: InferenceClient) -> None:
    chunks = [c.choices[0].delta.content for c in client.chat_completion(MESSAGES, stream=True)]
    assert len(chunks) == 5
    assert "".join(chunk or "" for chunk in chunks) == "Stand-in answer to: Hello there"


def test_max_tokens_limits_the_answer(client: InferenceClient) -> None:
    output = client.chat_completion(MESSAGES, max_tokens=2)
    assert output.choices[0].message.content == "Stand-in answer"


def test_a_wrong_or_missing_token_is_refused_with_401(standin: StandIn) -> None:
    for token in ("hf_wrong", None):
        wrong = InferenceClient(standin.url, token=token, timeout=1.0)
        with pytest.raises(HfHubHTTPError) as error:
            wrong.chat_completion(MESSAGES)
        assert error.value.response.status_code == 401


def test_without_a_token_configured_any_request_is_served() -> None:
    with StandIn() as open_standin:
        client = InferenceClient(open_standin.url, token="anything", timeout=1.0)
        assert client.chat_completion(MESSAGES).choices[0].message.content


def test_overloaded_is_a_503_the_client_recognises(
    standin: StandIn, client: InferenceClient
) -> None:
    standin.mode = "overloaded"
    with pytest.raises(HfHubHTTPError) as error:
        client.chat_completion(MESSAGES)
    assert error.value.response.status_code == 503


def test_unauthorized_refuses_even_the_right_token(
    standin: StandIn, client: InferenceClient
) -> None:
    standin.mode = "unauthorized"
    with pytest.raises(HfHubHTTPError) as error:
        client.chat_completion(MESSAGES, stream=True)
    assert error.value.response.status_code == 401


def test_slow_outlasts_the_client_timeout(standin: StandIn, client: InferenceClient) -> None:
    standin.mode = "slow"
    with pytest.raises(InferenceTimeoutError):
        client.chat_completion(MESSAGES)


def test_down_refuses_connections_until_it_comes_back(
    standin: StandIn, client: InferenceClient
) -> None:
    url = standin.url
    standin.mode = "down"
    with pytest.raises(httpx2.ConnectError):
        client.chat_completion(MESSAGES)
    standin.mode = "ok"
    assert standin.url == url
    assert client.chat_completion(MESSAGES).choices[0].message.content


def test_every_request_is_counted_whatever_the_mode(
    standin: StandIn, client: InferenceClient
) -> None:
    client.chat_completion(MESSAGES)
    standin.mode = "overloaded"
    with pytest.raises(HfHubHTTPError):
        client.chat_completion(MESSAGES)
    assert standin.requests == 2


def test_an_unknown_mode_is_refused(standin: StandIn) -> None:
    with pytest.raises(ValueError, match="unknown mode 'broken'"):
        standin.mode = "broken"
    assert standin.mode == "ok"


def test_the_mode_can_be_switched_over_http(standin: StandIn, client: InferenceClient) -> None:
    control = f"{standin.url}/_standin/mode"
    assert httpx.get(control).json() == {"mode": "ok"}
    assert httpx.post(control, json={"mode": "overloaded"}).json() == {"mode": "overloaded"}
    assert standin.mode == "overloaded"
    refused = httpx.post(control, json={"mode": "broken"})
    assert refused.status_code == 400
    assert ", ".join(MODES) in refused.json()["error"]


def test_down_over_http_answers_before_the_port_closes(
    standin: StandIn, client: InferenceClient
) -> None:
    answer = httpx.post(f"{standin.url}/_standin/mode", json={"mode": "down"})
    assert answer.json() == {"mode": "down"}
    with pytest.raises(httpx2.ConnectError):
        client.chat_completion(MESSAGES)


def test_a_control_port_survives_down(token: str) -> None:
    with StandIn(token=token, control_port=0) as standin:
        assert standin.control_url is not None
        control = f"{standin.control_url}/_standin/mode"
        client = InferenceClient(standin.url, token=token, timeout=1.0)
        httpx.post(control, json={"mode": "down"})
        with pytest.raises(httpx2.ConnectError):
            client.chat_completion(MESSAGES)
        assert httpx.get(control).json() == {"mode": "down"}
        httpx.post(control, json={"mode": "ok"})
        assert client.chat_completion(MESSAGES).choices[0].message.content
        assert httpx.post(f"{standin.control_url}/v1/chat/completions").status_code == 404


def test_close_releases_requests_held_by_slow(token: str) -> None:
    standin = StandIn(token=token, slow_seconds=3600).start()
    standin.mode = "slow"
    client = InferenceClient(standin.url, token=token, timeout=0.5)
    with pytest.raises(InferenceTimeoutError):
        client.chat_completion(MESSAGES)
    standin.close()
    with pytest.raises(httpx2.ConnectError):
        client.chat_completion(MESSAGES)


def run_cli(arguments: list[str], environ: dict[str, str]) -> tuple[subprocess.Popen[str], str]:
    """Start the CLI; return the process and the URL line it prints once listening."""
    process = subprocess.Popen(
        [sys.executable, "-m", "mlopsdeploy.testing", *arguments],
        env={**os.environ, **environ},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    return process, process.stdout.readline()


def test_cli_serves_with_the_token_from_the_environment_and_stops_on_sigterm(token: str) -> None:
    process, line = run_cli(["--port", "0", "--control-port", "0"], {"STANDIN_TOKEN": token})
    try:
        found = re.search(r"url=(\S+) control_url=(\S+)", line)
        assert found, line
        url, control_url = found.groups()
        client = InferenceClient(url, token=token, timeout=5.0)
        assert client.chat_completion(MESSAGES).choices[0].message.content
        httpx.post(f"{control_url}/_standin/mode", json={"mode": "overloaded"})
        with pytest.raises(HfHubHTTPError):
            client.chat_completion(MESSAGES)
        assert token not in " ".join(process.args)  # type: ignore[arg-type]
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate()


def test_cli_reads_the_token_from_a_file(token: str, tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(token + "\n")
    process, line = run_cli(["--port", "0", "--token-file", str(token_file)], {})
    try:
        url = line.split("url=")[1].split()[0]
        client = InferenceClient(url, token=token, timeout=5.0)
        assert client.chat_completion(MESSAGES).choices[0].message.content
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
        process.communicate()


def test_cli_without_a_token_refuses_to_start() -> None:
    environ = {name: value for name, value in os.environ.items() if name != "STANDIN_TOKEN"}
    finished = subprocess.run(
        [sys.executable, "-m", "mlopsdeploy.testing", "--port", "0"],
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert finished.returncode == 2
    assert "no token: set STANDIN_TOKEN or pass --token-file" in finished.stderr
