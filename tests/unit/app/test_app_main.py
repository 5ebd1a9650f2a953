"""`python -m app` as a process: serves on its port, logs without the token, stops on SIGTERM."""

from __future__ import annotations

import asyncio
import contextlib
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
from app.__main__ import NotifyingServer, build_server
from app.config import parse_settings
from starlette.types import Receive, Scope, Send

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


TEARDOWN = "interpreter torn down"


def listening_socket() -> socket.socket:
    sock = socket.create_server(("127.0.0.1", 0), backlog=16)
    sock.set_inheritable(True)
    return sock


def start_socket_activated(
    sock: socket.socket, model: Path, notify_path: Path, log: Path
) -> subprocess.Popen[bytes]:
    """`python -m app` as systemd starts a worker: the socket at fd 3, LISTEN_PID its own pid."""
    environ = app_environment(NOTIFY_SOCKET=str(notify_path), LISTEN_FDS="1")
    # A small launcher puts the socket on fd 3, names its own pid and runs the app in-process,
    # with an exit hook that shows whether the interpreter was torn down after the stop.
    launch = (
        "import atexit, os, runpy, sys; os.dup2(int(sys.argv[1]), 3);"
        " os.environ['LISTEN_PID'] = str(os.getpid()); sys.argv = ['app', *sys.argv[2:]];"
        f" atexit.register(print, {TEARDOWN!r}, flush=True);"
        " runpy.run_module('app', run_name='__main__', alter_sys=True)"
    )
    command = [sys.executable, "-c", launch, str(sock.fileno())]
    with log.open("wb") as output:
        return subprocess.Popen(
            [*command, "--model", str(model), "--port", "1"],  # port 1: proves it is not bound
            env=environ,
            stdout=output,
            stderr=subprocess.STDOUT,
            pass_fds=(sock.fileno(),),
        )


@pytest.fixture
def notify_listener(tmp_path: Path) -> Iterator[socket.socket]:
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    listener.bind(str(tmp_path / "notify"))
    yield listener
    listener.close()


def next_state(
    listener: socket.socket, prefix: str, process: subprocess.Popen[bytes], log: Path
) -> str:
    """The next notification starting with `prefix`; fails at once if the process ends first."""
    listener.settimeout(1)
    deadline = time.monotonic() + START_DEADLINE_S
    while time.monotonic() < deadline:
        try:
            message = listener.recv(256).decode()
        except TimeoutError:
            if process.poll() is not None:
                pytest.fail(f"the app exited with {process.returncode}:\n{log.read_text()}")
            continue
        if message.startswith(prefix):
            return message
    pytest.fail(f"no {prefix} within {START_DEADLINE_S} s:\n{log.read_text()}")


def test_worker_serves_the_inherited_socket_after_ready(
    sentiment_model_dir: Path, notify_listener: socket.socket, tmp_path: Path
) -> None:
    log = tmp_path / "app.log"
    with listening_socket() as sock:
        process = start_socket_activated(
            sock, sentiment_model_dir, Path(notify_listener.getsockname()), log
        )
        try:
            # A cold deploy waits for this status, not for READY=1 (the UI build).
            assert next_state(notify_listener, "STATUS=", process, log) == "STATUS=accepting"
            url = f"http://127.0.0.1:{sock.getsockname()[1]}"
            answer = httpx.post(f"{url}/api/sentiment", json={"text": "I am so happy today!"})
            assert answer.json()["label"] == "POSITIVE"
            assert next_state(notify_listener, "STATUS=", process, log) == "STATUS=serving"
            assert next_state(notify_listener, "READY=", process, log) == "READY=1"
            # READY=1 is what a rolling restart waits for: the whole worker, its UI built too.
            assert httpx.get(f"{url}/readyz").json()["ui"] == "serving"
            answer = httpx.post(f"{url}/api/sentiment", json={"text": "I am so happy today!"})
            assert answer.json()["label"] == "POSITIVE"
            process.send_signal(signal.SIGTERM)
            assert next_state(notify_listener, "STOPPING=", process, log) == "STOPPING=1"
            assert process.wait(timeout=60) == 0
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
    text = log.read_text()
    assert "Serving the socket systemd holds: ('127.0.0.1'" in text
    # A stopped worker ends right after its shutdown: its unit is inactive, and the socket may
    # start a new one, without waiting seconds for the interpreter's teardown.
    assert "Stopped by SIGTERM" in text
    assert TEARDOWN not in text


def test_a_stopping_server_answers_every_request_it_accepted() -> None:
    """A request that runs on when the stop begins gets its answer, not a 500.

    uvicorn cancels what outlasts its graceful-shutdown bound and answers it 500: under load a
    stopping worker's queue of classifications outlasted the 10 s it had. The request here is
    slower than any such bound.
    """
    accepted = asyncio.Event()
    server: NotifyingServer | None = None

    async def slow_app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        accepted.set()
        assert server is not None
        await asyncio.sleep((server.config.timeout_graceful_shutdown or 0) + 0.5)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"answered"})

    async def nothing_more() -> None:
        return None

    async def stop_while_answering(sock: socket.socket) -> httpx.Response:
        nonlocal server
        server = build_server(slow_app, parse_settings([], {}), nothing_more)
        serving = asyncio.create_task(server.serve(sockets=[sock]))
        async with httpx.AsyncClient(timeout=60) as client:
            answer = asyncio.create_task(client.get(f"http://127.0.0.1:{sock.getsockname()[1]}/"))
            await accepted.wait()
            server.should_exit = True  # what SIGTERM does (a real signal would reach pytest)
            response = await answer
        await serving
        return response

    with listening_socket() as sock:
        response = asyncio.run(stop_while_answering(sock))
    assert (response.status_code, response.text) == (200, "answered")


def test_the_server_parses_http_with_httptools() -> None:
    """uvicorn's C parser, which the app requires: its "auto" choice would fall back to the
    pure-Python h11 on a host whose venv lacks it, ~0.5 ms slower per answer."""
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    async def nothing(scope: Scope, receive: Receive, send: Send) -> None:
        return None

    async def nothing_more() -> None:
        return None

    server = build_server(nothing, parse_settings([], {}), nothing_more)
    server.config.load()
    assert server.config.http_protocol_class is HttpToolsProtocol


def test_worker_with_wrong_canaries_exits_without_taking_a_connection(
    always_positive_model: Path, notify_listener: socket.socket, tmp_path: Path
) -> None:
    log = tmp_path / "app.log"
    with listening_socket() as sock:
        waiting = socket.create_connection(sock.getsockname())  # queued before the worker runs
        process = start_socket_activated(
            sock, always_positive_model, Path(notify_listener.getsockname()), log
        )
        try:
            assert process.wait(timeout=START_DEADLINE_S) == 3, log.read_text()
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
        notify_listener.settimeout(0)
        states = []
        with contextlib.suppress(BlockingIOError):
            while True:
                states.append(notify_listener.recv(256).decode())
        assert "READY=1" not in states
        sock.settimeout(5)
        accepted, _ = sock.accept()  # still in the backlog: the worker never took it
        accepted.close()
        waiting.close()
    assert "Not ready: /readyz answered 503" in log.read_text()
