"""What "it works" means after a fault, asked the way a user would: over HTTP from outside.

A correct answer is `/readyz` 200 plus the right label for the app's two readiness canaries and
a dozen everyday sentences (the deploy's gate asks the same question, `health.check_once`, with
fewer sentences). An app with its own spec (`mlopsdeploy.toml`) is asked its spec's checks
instead, exactly as the gate asks them. Probing with short timeouts keeps a hung app from
stretching each poll.

Every request opens its own connection. Several workers share the app's socket, and a kept-alive
connection belongs to the worker that accepted it: a probe that reused the connection of its
steady-state round after a SIGSTOP or SIGKILL of that worker waited 5 s for a stopped process
(ReadTimeout) or met the dying one's reset, while every new connection was served by the others.
That probe measured one worker, not what a user arriving after the fault sees.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import httpx

from mlopsdeploy.deployment.control.appspec import AppSpec
from mlopsdeploy.deployment.control.probe import DEFAULT_CANARIES, Canary, probe_once

#: Everyday sentences with an obvious label, none of them in the model's training or its own
#: canaries: a broken or swapped model gets some wrong.
EVERYDAY = (
    Canary("Thank you, this made my week.", "POSITIVE"),
    Canary("The package arrived broken and nobody answered my emails.", "NEGATIVE"),
    Canary("We had a lovely dinner with friends tonight.", "POSITIVE"),
    Canary("My flight was cancelled and I lost a whole day.", "NEGATIVE"),
    Canary("The new update is fast and easy to use.", "POSITIVE"),
    Canary("This phone keeps crashing, it is useless.", "NEGATIVE"),
    Canary("Great job, the team did amazing work.", "POSITIVE"),
    Canary("I hate waiting in this awful queue.", "NEGATIVE"),
    Canary("The weather is beautiful and I feel great.", "POSITIVE"),
    Canary("The hotel room was dirty and smelled bad.", "NEGATIVE"),
    Canary("I really enjoyed the concert, what a night!", "POSITIVE"),
    Canary("I am so disappointed with this terrible service.", "NEGATIVE"),
)

PROBE_SENTENCES: tuple[Canary, ...] = (*DEFAULT_CANARIES, *EVERYDAY)

#: Per-request limits: a live app answers a probe in well under a second.
_TIMEOUT = httpx.Timeout(5.0, connect=2.0)
#: No connection outlives its request (see the module docstring).
_FRESH_CONNECTIONS = httpx.Limits(max_keepalive_connections=0)


@dataclass(frozen=True)
class Answer:
    """One probe round: None as cause means every check passed."""

    cause: str | None
    model_version: str | None = None

    @property
    def ok(self) -> bool:
        return self.cause is None


class AppProbe:
    """Probes one deployed app at `url` (http://host:port); `spec`: the app's own checks."""

    def __init__(
        self,
        url: str,
        sentences: tuple[Canary, ...] = PROBE_SENTENCES,
        transport: httpx.BaseTransport | None = None,
        spec: AppSpec | None = None,
    ) -> None:
        self.url = url
        self.sentences = sentences
        self.spec = spec
        self._client = httpx.Client(
            base_url=url, timeout=_TIMEOUT, limits=_FRESH_CONNECTIONS, transport=transport
        )

    def close(self) -> None:
        self._client.close()

    def correct(self) -> Answer:
        """readyz 200 and every sentence labelled right (or every check of the app's spec
        passed), or the first thing that was wrong."""
        try:
            cause, version = probe_once(self._client, self.sentences, self.spec)
        except httpx.HTTPError as error:
            return Answer(f"{type(error).__name__}: {error}")
        return Answer(cause, version)

    def generate(self, prompt: str, timeout: float) -> httpx.Response | str:
        """The API product's answer to `prompt`, or why no HTTP answer came at all."""
        try:
            return self._client.post("/api/generate", json={"prompt": prompt}, timeout=timeout)
        except httpx.HTTPError as error:
            return f"{type(error).__name__}: {error}"


def poll(
    check: Callable[[], Answer],
    seconds: float,
    interval: float = 0.1,
    on_failure: Callable[[Answer], None] | None = None,
) -> Answer:
    """Call `check` until it passes or `seconds` run out; return the last answer.

    `on_failure` sees every failing answer (the experiment uses it to notice an outage).
    """
    deadline = time.monotonic() + seconds
    while True:
        answer = check()
        if answer.ok:
            return answer
        if on_failure is not None:
            on_failure(answer)
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return answer
        time.sleep(min(interval, remaining))
