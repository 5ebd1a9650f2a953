"""``mlopsdeploy demo``: both products of the app working on the local testbed VM.

The demo VM cannot reach Hugging Face, so its API product talks to the Inference API stand-in,
run on this machine and bound to the VM's host-side link address only: the VM reaches it, nothing
beyond the testbed does. The stand-in keeps running after the demo, so the UI's API tab answers
too; its pid and URL are kept in the state dir, and the next demo reuses it while it answers.
Each answer the demo prints says where it came from, the stand-in by name.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from mlopsdeploy.testbed import TestVM

SAMPLE = "I am so happy today!"
STANDIN_START_TIMEOUT = 30.0


@dataclass(frozen=True)
class DemoStandIn:
    """A stand-in process serving the demo VM: its URL, pid and the token it demands."""

    url: str
    pid: int
    token_file: Path


def ensure_standin(vm: TestVM, state: Path) -> DemoStandIn:
    """The stand-in for `vm`, started in its own session unless one already answers."""
    record = state / "demo-standin.json"
    token_file = _token_file(state / "demo-standin-token")
    if record.is_file():
        known = json.loads(record.read_text())
        running = DemoStandIn(known["url"], known["pid"], token_file)
        host = httpx.URL(running.url).host
        if _is_standin(running.pid):
            if host == vm.host_address and _answers(running.url):
                return running
            os.kill(running.pid, signal.SIGTERM)  # bound to an address the VM no longer has
    port = _free_port(vm.host_address)
    url = f"http://{vm.host_address}:{port}"
    log = state / "demo-standin.log"
    command = [sys.executable, "-m", "mlopsdeploy.testing", "--host", vm.host_address]
    with log.open("ab") as output:
        process = subprocess.Popen(
            [*command, "--port", str(port), "--token-file", str(token_file)],
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=output,
            start_new_session=True,  # outlives `make demo`, so the UI's API tab keeps answering
        )
    deadline = time.monotonic() + STANDIN_START_TIMEOUT
    while not _answers(url):
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise RuntimeError(f"the Inference API stand-in did not start; see {log}")
        time.sleep(0.2)
    record.write_text(json.dumps({"url": url, "pid": process.pid}))
    return DemoStandIn(url, process.pid, token_file)


def local_answer(app_url: str, model_version: str | None) -> str:
    """One prediction from the local product, labelled with the model that made it."""
    answer = httpx.post(f"{app_url}/api/sentiment", json={"text": SAMPLE}, timeout=30)
    answer.raise_for_status()
    body = answer.json()
    source = f"local product, model {model_version or 'unknown'} on the VM"
    return f"[{source}] {SAMPLE!r} -> {body['label']} ({body['score']:.3f})"


def api_answer(app_url: str, source: str) -> str:
    """One answer from the API product (a positive thought), labelled with `source`."""
    answer = httpx.post(f"{app_url}/api/generate", timeout=60)
    body = answer.json()
    if answer.status_code != 200:
        return f"[API product, {source}] failed: {body['error']}: {body['detail']}"
    return f"[API product, {source}] a positive thought -> {body['text']!r}"


def standin_source(standin: DemoStandIn) -> str:
    return f"the Inference API stand-in at {standin.url} (pid {standin.pid}), not Hugging Face"


def _token_file(path: Path) -> Path:
    """A random token the stand-in demands and the deploy hands the app (0600, made once)."""
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as file:
            file.write("hf_demo_" + secrets.token_hex(16))
    return path


def _free_port(address: str) -> int:
    with socket.socket() as probe:
        probe.bind((address, 0))
        return int(probe.getsockname()[1])


def _is_standin(pid: int) -> bool:
    """Whether `pid` still is the stand-in we started (a pid can be reused by anything)."""
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return b"mlopsdeploy.testing" in command


def _answers(url: str) -> bool:
    try:
        return httpx.get(f"{url}/_standin/mode", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False
