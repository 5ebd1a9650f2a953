"""A steady client load through an experiment: what users would have seen, request by request.

Recovery time alone hides what matters to users: during a "recovery" of 0 s a killed worker may
still have dropped the requests it was serving, and during a rolling restart nothing may be down
at all. `ClientLoad` posts one sentence with a known label to `/api/sentiment` at a fixed rate
(a new connection each, as separate users would), never more than `max_in_flight` at once, and
counts every request that did not come back with the right label: refused, reset, timed out, an
HTTP error, or a wrong label. `LoadReport` splits the failures into those that started after the
fault took effect and those already in flight at that instant (a killed worker takes those with
it: reported, never hidden), and gives the longest gap without a correct answer and the p99
latency from the fault on.
"""

from __future__ import annotations

import asyncio
import math
import threading
import time
from dataclasses import asdict, dataclass, field
from itertools import cycle, pairwise

import httpx

from mlopsdeploy.deployment.control.probe import Canary
from mlopsdeploy.resilience.probes import PROBE_SENTENCES

#: 20 requests/s: enough to see a gap of 100 ms, little enough for a 2-core VM to serve easily.
DEFAULT_RATE = 20.0
#: Longer than a worker's start, so a request waiting in the socket's backlog is not given up on.
DEFAULT_TIMEOUT_S = 90.0


@dataclass(frozen=True)
class Attempt:
    """One request: when it started and ended (monotonic seconds) and why it failed, if it did."""

    started: float
    ended: float
    failure: str | None = None

    @property
    def ok(self) -> bool:
        return self.failure is None


@dataclass(frozen=True)
class LoadReport:
    """What the load saw; seconds and counts, ready for JSON.

    + requests: all requests sent
    + failed_after_fault: failed requests that started after the fault took effect
    + failed_in_flight: failed requests already sent when the fault took effect
    + failed_before: failed requests that ended before the fault (steady state was not steady)
    + longest_gap_s: longest time without a correct answer (between answers, from the fault on)
    + p99_latency_s: 99th percentile latency of requests started after the fault
    + failures: the distinct failure kinds seen, with counts
    + not_sent: requests the client skipped because `max_in_flight` were still waiting (a limit
      of this client, not a failure of the app)
    """

    requests: int
    failed_after_fault: int
    failed_in_flight: int
    failed_before: int
    longest_gap_s: float
    p99_latency_s: float
    failures: dict[str, int] = field(default_factory=dict)
    not_sent: int = 0

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def summarize(
    attempts: list[Attempt], fault_at: float, until: float, not_sent: int = 0
) -> LoadReport:
    """The report for `attempts`, the fault having taken effect at `fault_at` (monotonic).

    The longest gap is measured over [fault_at, until] between the end times of correct answers,
    so a load that never got an answer after the fault reports the whole window.
    """
    after = [a for a in attempts if a.started >= fault_at]
    in_flight = [a for a in attempts if a.started < fault_at <= a.ended]
    before = [a for a in attempts if a.ended < fault_at]
    answered = sorted(a.ended for a in attempts if a.ok and fault_at <= a.ended <= until)
    marks = [fault_at, *answered, until]
    gap = max((b - a for a, b in pairwise(marks)), default=0.0)
    latencies = sorted(a.ended - a.started for a in after)
    p99 = latencies[min(len(latencies) - 1, math.ceil(0.99 * len(latencies)) - 1)] if after else 0
    kinds: dict[str, int] = {}
    for attempt in attempts:
        if attempt.failure:
            kinds[attempt.failure] = kinds.get(attempt.failure, 0) + 1
    return LoadReport(
        requests=len(attempts),
        failed_after_fault=sum(not a.ok for a in after),
        failed_in_flight=sum(not a.ok for a in in_flight),
        failed_before=sum(not a.ok for a in before),
        longest_gap_s=round(gap, 3),
        p99_latency_s=round(p99, 3),
        failures=kinds,
        not_sent=not_sent,
    )


def _failure_kind(error: httpx.HTTPError) -> str:
    text = str(error).lower()
    if isinstance(error, httpx.TimeoutException):
        return "timeout"
    if isinstance(error, httpx.ConnectError) and "refused" in text:
        return "refused"
    if "reset" in text or isinstance(error, httpx.RemoteProtocolError):
        return "reset"
    return type(error).__name__


class ClientLoad:
    """Posts to `url`/api/sentiment at `rate` per second from a background thread.

    Use as a context manager around the experiment; call `mark_fault()` when the fault took
    effect; `report()` after the block. Requests go only where `url` points.
    """

    def __init__(
        self,
        url: str,
        rate: float = DEFAULT_RATE,
        timeout: float = DEFAULT_TIMEOUT_S,
        sentences: tuple[Canary, ...] = PROBE_SENTENCES,
        max_in_flight: int = 400,
    ) -> None:
        self.url = url.rstrip("/")
        self.interval = 1.0 / rate
        self.timeout = timeout
        self.sentences = sentences
        self.max_in_flight = max_in_flight
        self.attempts: list[Attempt] = []
        self.not_sent = 0
        self.fault_at: float | None = None
        self.stopped_at: float | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="client-load", daemon=True)

    def __enter__(self) -> ClientLoad:
        return self.start()

    def start(self) -> ClientLoad:
        """Start sending (once); the context manager does this on entry."""
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def mark_fault(self) -> None:
        """The fault took effect now: requests from here on count as "after the fault"."""
        self.fault_at = time.monotonic()

    def stop(self) -> None:
        """Stop sending, wait for requests in flight (up to their timeout)."""
        if self.stopped_at is None:
            self.stopped_at = time.monotonic()
            self._stop.set()
            self._thread.join()

    def report(self) -> LoadReport:
        """The summary; without `mark_fault()` the whole run counts as "after the fault"."""
        start = min((a.started for a in self.attempts), default=0.0)
        until = self.stopped_at or time.monotonic()
        return summarize(list(self.attempts), self.fault_at or start, until, self.not_sent)

    def _run(self) -> None:
        asyncio.run(self._send_all())

    async def _send_all(self) -> None:
        # No keep-alive: every request opens its own connection, as separate users would.
        limits = httpx.Limits(max_connections=self.max_in_flight, max_keepalive_connections=0)
        gate = asyncio.Semaphore(self.max_in_flight)
        tasks: set[asyncio.Task[None]] = set()
        async with httpx.AsyncClient(timeout=self.timeout, limits=limits) as client:
            sentences = cycle(self.sentences)
            next_at = time.monotonic()
            while not self._stop.is_set():
                if gate.locked():
                    self.not_sent += 1
                else:
                    task = asyncio.create_task(self._one(client, next(sentences), gate))
                    tasks.add(task)
                    task.add_done_callback(tasks.discard)
                next_at += self.interval
                await asyncio.sleep(max(0.0, next_at - time.monotonic()))
            if tasks:
                await asyncio.gather(*tasks)

    async def _one(
        self, client: httpx.AsyncClient, sentence: Canary, gate: asyncio.Semaphore
    ) -> None:
        async with gate:
            started = time.monotonic()
            failure: str | None = None
            try:
                answer = await client.post(
                    f"{self.url}/api/sentiment", json={"text": sentence.text}
                )
                if answer.status_code != 200:
                    failure = f"http {answer.status_code}"
                elif answer.json().get("label") != sentence.label:
                    failure = "wrong label"
            except httpx.HTTPError as error:
                failure = _failure_kind(error)
            self.attempts.append(Attempt(started, time.monotonic(), failure))
