"""The health probe, run from the control machine until a release answers correctly.

HTTP 200 is not enough (the typical smoke test passed while the model was broken): a release is
healthy when ``/readyz`` says ready AND ``/api/sentiment`` gives the expected label for every
canary sentence.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass

import httpx

from mlopsdeploy.deployment.control.app_checks import WRONG_ANSWER, check_app
from mlopsdeploy.deployment.control.appspec import AppSpec
from mlopsdeploy.model.canaries import READINESS
from mlopsdeploy.model.recipe import LABELS

#: How a wrong label reads: the probe's own canary check, the app's (its ``/readyz`` reason once
#: the model is loaded), an app spec's check. A loaded model labels a sentence the same way every
#: time, so these are final.
WRONG_LABELS = ("canary ", "/readyz answered 503: canary ", WRONG_ANSWER)


@dataclass(frozen=True)
class Canary:
    """A sentence whose label any acceptable model must get right."""

    text: str
    label: str


# The app's own readiness sentences, from the one list the model build also checks; a model's
# manifest may add more.
DEFAULT_CANARIES = tuple(Canary(example.text, LABELS[example.label]) for example in READINESS)


@dataclass(frozen=True)
class ProbeResult:
    ok: bool
    cause: str
    seconds: float
    model_version: str | None = None


def check_once(client: httpx.Client, canaries: Iterable[Canary]) -> tuple[str | None, str | None]:
    """One probe round: (cause of failure or None, model version reported by /readyz)."""
    ready = client.get("/readyz")
    body = _json(ready)
    if ready.status_code != 200:
        return f"/readyz answered {ready.status_code}: {body.get('reason', ready.text[:200])}", None
    version = body.get("model_version")
    wanted = list(canaries)
    answer = client.post("/api/sentiment", json={"texts": [c.text for c in wanted]})
    if answer.status_code != 200:
        return f"/api/sentiment answered {answer.status_code}: {answer.text[:200]}", version
    results = _json(answer).get("results", [])
    if len(results) != len(wanted):
        return f"/api/sentiment returned {len(results)} results for {len(wanted)} texts", version
    for canary, result in zip(wanted, results, strict=True):
        if result.get("label") != canary.label:
            return (
                f"canary {canary.text!r} classified {result.get('label')}, expected {canary.label}",
                version,
            )
    return None, version


def probe_once(
    client: httpx.Client, canaries: Iterable[Canary], spec: AppSpec | None = None
) -> tuple[str | None, str | None]:
    """One round of what healthy means for this app: its spec's checks, else the canaries."""
    if spec is None or spec.bundled:
        return check_once(client, canaries)
    return check_app(client, spec), None


def _json(response: httpx.Response) -> dict:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def wait_healthy(
    base_url: str,
    canaries: Iterable[Canary] = DEFAULT_CANARIES,
    timeout: float = 90.0,
    interval: float = 0.5,
    transport: httpx.BaseTransport | None = None,
    spec: AppSpec | None = None,
) -> ProbeResult:
    """Probe ``base_url`` until healthy or ``timeout`` passes; the last cause explains a failure.

    A model failing its canaries (or an app failing a check of its ``spec``) is final at once:
    waiting cannot fix wrong labels, and the user should learn that in seconds rather than
    after the timeout. Without a spec (or with the bundled app's) the canaries are asked; a
    spec may grant its app a longer first start (``start.timeout``).
    """
    if spec is not None and spec.start_timeout:
        timeout = max(timeout, spec.start_timeout)
    wanted = list(canaries)
    start = time.monotonic()
    cause = "no answer yet"
    with httpx.Client(base_url=base_url, timeout=10.0, transport=transport) as client:
        while True:
            try:
                failure, version = probe_once(client, wanted, spec)
            except httpx.HTTPError as e:
                failure, version = f"{type(e).__name__}: {e}", None
            elapsed = time.monotonic() - start
            if failure is None:
                return ProbeResult(True, "healthy", elapsed, version)
            cause = failure
            if failure.startswith(WRONG_LABELS) or elapsed >= timeout:
                return ProbeResult(False, cause, elapsed, version)
            time.sleep(min(interval, max(0.0, timeout - elapsed)))
