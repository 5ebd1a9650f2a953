"""The readiness probe: the deploy's own health check, one round, with a short timeout.

The same check as the deploy's gate (``/readyz`` ready AND the right label for every canary), so
"healthy" means the same thing before and after a deploy. The canaries are the app's plus those
in the model manifest the deploy would ship; a host with its own app (``app_dir``) is asked that
app spec's checks, as its gate asks them. Each probe opens a fresh connection, like a new
user would: a pooled connection to a frozen process would hide that it accepts no new ones.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import httpx

from mlopsdeploy.config import HostConfig
from mlopsdeploy.deployment.control.appspec import AppSpec
from mlopsdeploy.deployment.control.appspec_load import load_app_spec
from mlopsdeploy.deployment.control.bundle import manifest_canaries
from mlopsdeploy.deployment.control.probe import DEFAULT_CANARIES, Canary, probe_once
from mlopsdeploy.watchdog.watcher import ProbeOutcome


def canaries_for(model_dir: Path) -> tuple[Canary, ...]:
    """The canaries a deploy of `model_dir` is gated on; the app's own when it is not there."""
    try:
        manifest = json.loads((model_dir / "manifest.json").read_text())
    except (OSError, ValueError):
        return DEFAULT_CANARIES
    return manifest_canaries(manifest)


def app_spec_for(cfg: HostConfig) -> AppSpec | None:
    """The spec of the app ``cfg`` deploys (its ``app_dir``); None for the bundled app."""
    if cfg.app_dir is None:
        return None
    spec = load_app_spec(cfg.app_dir)
    return None if spec.bundled else spec


def readiness_probe(
    cfg: HostConfig,
    canaries: tuple[Canary, ...],
    timeout_s: float,
    transport: httpx.BaseTransport | None = None,
    spec: AppSpec | None = None,
) -> Callable[[], ProbeOutcome]:
    def probe() -> ProbeOutcome:
        limits = httpx.Limits(max_keepalive_connections=0)
        with httpx.Client(
            base_url=cfg.url, timeout=timeout_s, limits=limits, transport=transport
        ) as client:
            try:
                failure, version = probe_once(client, canaries, spec)
            except httpx.HTTPError as exc:
                return ProbeOutcome(False, f"{type(exc).__name__}: {exc}")
        return ProbeOutcome(failure is None, failure or f"ready, model {version}")

    return probe
