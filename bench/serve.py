"""Benchmark of the app's local product on both runtimes, ONNX and torch, side by side.

Prints, from one run on one machine (so the ratios compare like with like), for each runtime:

1. process start to the first /readyz 200 of `python -m app` (median of `--starts`);
2. the raw runtime call for one sentence (ONNX session / `pipeline()`) in this process, and
   POST /api/sentiment with one client on loopback, p50 as a multiple of the raw p50 (goal:
   at most 1.3x);
3. throughput (sentences/s) with 16 concurrent clients, micro-batched, with the mean batch;
4. resident memory of the serving process after the load (goal: at most 300 MB);

and the ONNX figure as a multiple of the torch one (goal: 16-client throughput >= 1.5x).
Both servers run side by side and every measurement is taken in interleaved rounds, so that on a
shared machine each figure sees the same background load.

The clients are the cheapest Python has, so the figures are the server's: keep-alive
connections that write prepared HTTP/1.1 requests and read each answer by its Content-Length
(status and label checked), a blocking socket for the latency and asyncio streams for the
throughput. On two cores the client shares the CPU with the server: httpx spent 2.5 ms of CPU
per request (11.75 ms served p50 against 9.26 ms with `http.client`, same server, raw call
7.22 ms), and `http.client` itself ~0.2 ms more than a socket (its header parsing). Both are
still printed, to compare with earlier figures.

The measured servers are whole (their UI built) before the first round: a worker still
importing gradio holds the interpreter lock for seconds, which no served request should be
measured against. Usage:

    flock /tmp/team/bench.lock .venv/bin/python bench/serve.py --model build/model
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

RUNTIMES = ("onnx", "torch")
SENTENCES = [
    "I am so happy today!",
    "This is the worst day ever.",
    "The film was a delight from start to finish.",
    "I waited an hour and nobody came to help.",
    "What a wonderful surprise, thank you so much.",
    "The food was cold and the service was rude.",
    "I feel okay, I guess.",
    "This update broke everything I relied on.",
    "Our team finally shipped the release and it works beautifully.",
    "I regret buying this, it stopped working after two days.",
    "The hotel room was clean, quiet and comfortable.",
    "Traffic was terrible and I missed my train.",
    "She sent me the kindest letter.",
    "The instructions were confusing and incomplete.",
    "A lovely walk in the park with old friends.",
    "My phone screen cracked again.",
]


@dataclass
class Figures:
    """Samples of one runtime across the rounds."""

    start: list[float] = field(default_factory=list)
    raw: list[float] = field(default_factory=list)
    served: list[float] = field(default_factory=list)
    served_http_client: list[float] = field(default_factory=list)
    served_httpx: list[float] = field(default_factory=list)
    round_ratios: list[float] = field(default_factory=list)
    throughput: list[float] = field(default_factory=list)
    texts: float = 0.0
    passes: float = 0.0
    rss_mb: float = 0.0


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def raw_call(model: str, runtime: str) -> Callable[[str], object]:
    """One sentence through the runtime as a script without any server would call it."""
    from app.config import Settings
    from app.local_model import load

    classify = load(model, runtime, Settings().torch_threads).classify
    for sentence in SENTENCES:
        classify([sentence])
    return lambda sentence: classify([sentence])


def raw_latencies(call: Callable[[str], object], requests: int) -> list[float]:
    """Seconds per raw call on one sentence.

    Each call starts after a short pause, as a served request starts in a server that was waiting
    for it: on a busy machine the scheduler favours a task that just woke over one that never
    sleeps, and a tight loop would make the raw figure look slower than it is.
    """
    latencies = []
    for index in range(requests):
        time.sleep(0.005)
        start = time.perf_counter()
        call(SENTENCES[index % len(SENTENCES)])
        latencies.append(time.perf_counter() - start)
    return latencies


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Served:
    url: str
    pid: int
    start_seconds: float


@contextmanager
def served_app(model: str, runtime: str, *, whole: bool = False) -> Iterator[Served]:
    """`python -m app` on a free loopback port until ready (and, if `whole`, its UI built);
    stopped with SIGTERM afterwards."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "APP_LOG_LEVEL": "warning", "APP_RUNTIME": runtime}
    started = time.perf_counter()
    ready: float | None = None
    process = subprocess.Popen(
        [sys.executable, "-m", "app", "--model", model, "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 300
        while True:
            if process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"the app did not get ready on {url}")
            try:
                answer = httpx.get(f"{url}/readyz", timeout=5)
            except httpx.TransportError:
                answer = None
            if answer is not None and answer.status_code == 200:
                ready = ready or time.perf_counter()
                if not whole or answer.json().get("ui") != "starting":
                    break
            time.sleep(0.02)
        yield Served(url, process.pid, (ready or started) - started)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def one_client_latencies(url: str, requests: int) -> list[float]:
    """Seconds per POST /api/sentiment of one sentence, one after another on one connection:
    a prepared request written to a socket, the answer read by its Content-Length.

    A new connection per call: the server closes one that was idle for 5 s (uvicorn's
    keep-alive), as it is between rounds. Its first request (the TCP connect) is not counted.
    """
    host, port = url.removeprefix("http://").rsplit(":", 1)
    prepared = [sentiment_request(sentence) for sentence in SENTENCES]
    latencies = []
    with socket.create_connection((host, int(port)), timeout=120) as connection:
        connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        answers = connection.makefile("rb")
        for index in range(requests + 1):
            start = time.perf_counter()
            connection.sendall(prepared[index % len(prepared)])
            head = []
            while (line := answers.readline()) not in (b"\r\n", b""):
                head.append(line)
            status, length = status_and_length(b"".join(head).decode("latin-1"))
            body = answers.read(length)
            latencies.append(time.perf_counter() - start)
            if status != "200" or b'"label"' not in body:
                raise SystemExit(f"/api/sentiment answered {status}: {body!r}")
    return latencies[1:]


def http_client_latencies(url: str, requests: int) -> list[float]:
    """The same through `http.client`, as the previous runs of this bench measured it."""
    host, port = url.removeprefix("http://").rsplit(":", 1)
    connection = http.client.HTTPConnection(host, int(port), timeout=120)
    try:
        return _latencies(connection, requests + 1)[1:]
    finally:
        connection.close()


def _latencies(connection: http.client.HTTPConnection, requests: int) -> list[float]:
    latencies = []
    for index in range(requests):
        body = json.dumps({"text": SENTENCES[index % len(SENTENCES)]})
        start = time.perf_counter()
        connection.request("POST", "/api/sentiment", body, {"Content-Type": "application/json"})
        answer = connection.getresponse()
        answer.read()
        latencies.append(time.perf_counter() - start)
        if answer.status != 200:
            raise SystemExit(f"/api/sentiment answered {answer.status}")
    return latencies


def httpx_latencies(client: httpx.Client, requests: int) -> list[float]:
    """The same through httpx, as earlier runs of this bench measured it."""
    latencies = []
    for index in range(requests):
        start = time.perf_counter()
        client.post("/api/sentiment", json={"text": SENTENCES[index % len(SENTENCES)]})
        latencies.append(time.perf_counter() - start)
    return latencies


def throughput(url: str, clients: int, requests_per_client: int) -> float:
    """Sentences per second when `clients` callers each send one sentence at a time."""
    return asyncio.run(concurrent_calls(url, clients, requests_per_client))


def status_and_length(head: str) -> tuple[str, int]:
    """An answer's status code and its Content-Length (the app always sends one), from its
    head: the status line and the header lines."""
    lines = head.split("\r\n")
    length = next(
        int(line.split(":", 1)[1]) for line in lines if line.lower().startswith("content-length:")
    )
    return lines[0].split()[1], length


def sentiment_request(sentence: str) -> bytes:
    body = json.dumps({"text": sentence}).encode()
    head = (
        "POST /api/sentiment HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


async def concurrent_calls(url: str, clients: int, requests_per_client: int) -> float:
    """Each client: one keep-alive connection, a prepared request, the answer read by its
    Content-Length (the app always sends one), status and label checked."""
    host, port = url.removeprefix("http://").rsplit(":", 1)
    requests = [sentiment_request(sentence) for sentence in SENTENCES]

    async def caller(offset: int, count: int) -> None:
        reader, writer = await asyncio.open_connection(host, int(port))
        try:
            for index in range(count):
                writer.write(requests[(offset + index) % len(requests)])
                head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
                status, length = status_and_length(head)
                body = json.loads(await reader.readexactly(length))
                if status != "200" or "label" not in body:
                    raise SystemExit(f"/api/sentiment answered {status}: {body}")
        finally:
            writer.close()
            await writer.wait_closed()

    start = time.perf_counter()
    await asyncio.gather(*(caller(i, requests_per_client) for i in range(clients)))
    elapsed = time.perf_counter() - start
    return clients * requests_per_client / elapsed


def batch_totals(url: str) -> tuple[float, float]:
    """(texts, forward passes) the app's micro-batcher has done so far, from /metrics."""
    values = {
        sample.name: sample.value
        for family in text_string_to_metric_families(httpx.get(f"{url}/metrics").text)
        for sample in family.samples
    }
    return values["app_classifier_batch_size_sum"], values["app_classifier_batch_size_count"]


def rss_mb(pid: int) -> float:
    """Resident memory of process `pid` in MB, from /proc."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="build/model", help="model dir carrying ONNX files")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--starts", type=int, default=5, help="process starts per runtime")
    parser.add_argument("--requests", type=int, default=40, help="single sentences per round")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--requests-per-client", type=int, default=6, help="per round")
    args = parser.parse_args()
    model = str(Path(args.model).resolve()) if Path(args.model).exists() else args.model
    print(f"model {model}; {os.cpu_count()} CPUs; load average {os.getloadavg()[0]:.2f}")

    figures = {runtime: Figures() for runtime in RUNTIMES}
    for _ in range(args.starts):
        for runtime in RUNTIMES:
            with served_app(model, runtime) as served:
                figures[runtime].start.append(served.start_seconds)
    with (
        served_app(model, "onnx", whole=True) as onnx,
        served_app(model, "torch", whole=True) as torch,
    ):
        apps = {"onnx": onnx, "torch": torch}
        calls = {runtime: raw_call(model, runtime) for runtime in RUNTIMES}
        httpx_clients = {r: httpx.Client(base_url=apps[r].url, timeout=120) for r in RUNTIMES}
        for runtime in RUNTIMES:
            one_client_latencies(apps[runtime].url, len(SENTENCES))
            http_client_latencies(apps[runtime].url, len(SENTENCES))
            httpx_latencies(httpx_clients[runtime], len(SENTENCES))
        # Rounds interleave every measurement, so each sees the same background load.
        for _ in range(args.rounds):
            for runtime in RUNTIMES:
                mine, url = figures[runtime], apps[runtime].url
                raw = raw_latencies(calls[runtime], args.requests)
                one_client = one_client_latencies(url, args.requests)
                mine.raw += raw
                mine.served += one_client
                mine.round_ratios.append(statistics.median(one_client) / statistics.median(raw))
                mine.served_http_client += http_client_latencies(url, args.requests)
                mine.served_httpx += httpx_latencies(httpx_clients[runtime], args.requests)
                texts_before, passes_before = batch_totals(url)
                mine.throughput.append(throughput(url, args.clients, args.requests_per_client))
                texts_after, passes_after = batch_totals(url)
                mine.texts += texts_after - texts_before
                mine.passes += passes_after - passes_before
        for runtime in RUNTIMES:
            figures[runtime].rss_mb = rss_mb(apps[runtime].pid)
            httpx_clients[runtime].close()
    print(report(figures, args.clients))
    print(f"load average at the end {os.getloadavg()[0]:.2f} (a shared machine skews all figures)")
    return 0


def report(figures: dict[str, Figures], clients: int) -> str:
    """The side-by-side table: medians per runtime, then onnx as a multiple of torch."""
    onnx, torch = figures["onnx"], figures["torch"]
    median = statistics.median
    rows = [
        ("start -> /readyz 200 (s)", median(onnx.start), median(torch.start), "goal <= 3 s"),
        ("raw call p50 (ms)", median(onnx.raw) * 1e3, median(torch.raw) * 1e3, ""),
        ("served p50, 1 client (ms)", median(onnx.served) * 1e3, median(torch.served) * 1e3, ""),
        (
            "served / raw p50 (x)",
            median(onnx.served) / median(onnx.raw),
            median(torch.served) / median(torch.raw),
            "goal <= 1.3x",
        ),
        (
            "served p50 http.client (ms)",
            median(onnx.served_http_client) * 1e3,
            median(torch.served_http_client) * 1e3,
            "session 4's client",
        ),
        (
            "served p50 via httpx (ms)",
            median(onnx.served_httpx) * 1e3,
            median(torch.served_httpx) * 1e3,
            "earlier runs' client",
        ),
        (
            f"{clients} clients (sentences/s)",
            median(onnx.throughput),
            median(torch.throughput),
            "goal onnx >= 1.5x torch",
        ),
        ("mean batch (texts)", onnx.texts / onnx.passes, torch.texts / torch.passes, ""),
        ("RSS per worker (MB)", onnx.rss_mb, torch.rss_mb, "goal <= 300 MB"),
    ]
    lines = [f"{'':28}{'onnx':>10}{'torch':>10}{'onnx/torch':>12}"]
    for name, a, b, goal in rows:
        lines.append(f"{name:28}{a:>10.2f}{b:>10.2f}{a / b:>11.2f}x  {goal}")
    lines.append("ranges over the rounds (min-max):")
    for runtime, mine in figures.items():
        lines.append(
            f"  {runtime}: start {min(mine.start):.2f}-{max(mine.start):.2f} s, served/raw p50 "
            f"{min(mine.round_ratios):.2f}-{max(mine.round_ratios):.2f}x, {clients} clients "
            f"{min(mine.throughput):.1f}-{max(mine.throughput):.1f} sentences/s"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
