"""Benchmark of the app's local product: what serving over HTTP costs, what micro-batching buys.

Prints, from one run on one machine (so the ratios compare like with like):

1. the raw `pipeline()` latency for one sentence (p50/p95), in this process;
2. POST /api/sentiment latency with one client (p50/p95) against `python -m app` on loopback,
   and its p50 as a multiple of the raw p50 (goal: at most 1.3x);
3. throughput (sentences/s) with 16 concurrent clients, with micro-batching and without
   (APP_BATCH_MAX_SIZE=1), and their ratio (goal: at least 2.5x), plus the mean batch size.

Both servers run side by side and every measurement is taken in interleaved rounds, so that on a
shared machine each figure sees the same background load. Request counts are bounded (see the
flags). Usage:

    .venv/bin/python bench/serve.py --model build/model
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

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


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def load_raw_pipeline(model: str) -> Any:
    """The pipeline as a script without any server would use it, on the app's default threads."""
    from app.classifier import load_pipeline
    from app.config import Settings

    pipe = load_pipeline(model, Settings().torch_threads)
    for sentence in SENTENCES:
        pipe(sentence)
    return pipe


def raw_latencies(pipe: Any, requests: int) -> list[float]:
    """Seconds per `pipeline()` call on one sentence.

    Each call starts after a short pause, as a served request starts in a server that was waiting
    for it: on a busy machine the scheduler favours a task that just woke over one that never
    sleeps, and a tight loop would make the raw figure look slower than it is.
    """
    latencies = []
    for index in range(requests):
        time.sleep(0.005)
        start = time.perf_counter()
        pipe(SENTENCES[index % len(SENTENCES)])
        latencies.append(time.perf_counter() - start)
    return latencies


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def served_app(model: str, **environ: str) -> Iterator[str]:
    """`python -m app` on a free loopback port until ready; stopped with SIGTERM afterwards."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, **environ, "APP_LOG_LEVEL": "warning"}
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
                if httpx.get(f"{url}/readyz", timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        yield url
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def one_client_latencies(client: httpx.Client, requests: int) -> list[float]:
    latencies = []
    for index in range(requests):
        start = time.perf_counter()
        client.post("/api/sentiment", json={"text": SENTENCES[index % len(SENTENCES)]})
        latencies.append(time.perf_counter() - start)
    return latencies


def throughput(url: str, clients: int, requests_per_client: int) -> float:
    """Sentences per second when `clients` callers each send one sentence at a time."""
    return asyncio.run(concurrent_calls(url, clients, requests_per_client))


async def concurrent_calls(url: str, clients: int, requests_per_client: int) -> float:
    limits = httpx.Limits(max_connections=clients)
    async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as client:

        async def caller(offset: int, count: int) -> None:
            for index in range(count):
                sentence = SENTENCES[(offset + index) % len(SENTENCES)]
                answer = await client.post("/api/sentiment", json={"text": sentence})
                answer.raise_for_status()

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


def milliseconds(samples: list[float]) -> str:
    return (
        f"p50 {statistics.median(samples) * 1000:7.2f} ms   "
        f"p95 {percentile(samples, 0.95) * 1000:7.2f} ms   (n={len(samples)})"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="build/model", help="model dir or Hub id")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--requests", type=int, default=40, help="single sentences per round")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--requests-per-client", type=int, default=6, help="per round")
    args = parser.parse_args()
    model = str(Path(args.model).resolve()) if Path(args.model).exists() else args.model
    print(f"model {model}; {os.cpu_count()} CPUs; load average {os.getloadavg()[0]:.2f}")

    raw: list[float] = []
    served: list[float] = []
    batched: list[float] = []
    unbatched: list[float] = []
    with (
        served_app(model) as batched_url,
        served_app(model, APP_BATCH_MAX_SIZE="1") as unbatched_url,
        httpx.Client(base_url=batched_url, timeout=120) as client,
    ):
        pipe = load_raw_pipeline(model)
        one_client_latencies(client, len(SENTENCES))
        texts = passes = 0.0
        # Rounds interleave every measurement, so each sees the same background load.
        for _ in range(args.rounds):
            raw += raw_latencies(pipe, args.requests)
            served += one_client_latencies(client, args.requests)
            texts_before, passes_before = batch_totals(batched_url)
            batched.append(throughput(batched_url, args.clients, args.requests_per_client))
            texts_after, passes_after = batch_totals(batched_url)
            texts += texts_after - texts_before
            passes += passes_after - passes_before
            unbatched.append(throughput(unbatched_url, args.clients, args.requests_per_client))

    print(f"raw pipeline(), 1 sentence:    {milliseconds(raw)}")
    print(f"POST /api/sentiment, 1 client: {milliseconds(served)}")
    overhead = statistics.median(served) / statistics.median(raw)
    print(f"  p50 overhead: {overhead:.2f}x the raw call (goal <= 1.3x)")
    sentences = args.rounds * args.clients * args.requests_per_client
    print(f"{args.clients} concurrent clients, {sentences} sentences each way (median of rounds):")
    print(
        f"  micro-batched: {statistics.median(batched):7.1f} sentences/s "
        f"(mean batch {texts / passes:.1f} texts)"
    )
    print(f"  one at a time: {statistics.median(unbatched):7.1f} sentences/s")
    speedup = statistics.median(batched) / statistics.median(unbatched)
    print(f"  speed-up: {speedup:.2f}x (goal >= 2.5x)")
    print(f"load average at the end {os.getloadavg()[0]:.2f} (a shared machine skews all figures)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
