"""Alerts: a generic JSON POST on detection, recovery and giving up.

One plain POST works with Slack-style incoming webhooks (they read "text") and with small
Telegram or Matrix bridges that forward a field of a JSON body. Webhook URLs usually embed their
secret in the path, so the URL is read from the environment or a file, never from the command
line (visible in ps), and is never written to a log - failures are logged without it.
"""

from __future__ import annotations

import logging
from typing import Protocol

import httpx

from mlopsdeploy.watchdog.journal import Incident

log = logging.getLogger(__name__)

EVENTS = ("detected", "recovered", "gave_up")


class Alerter(Protocol):
    def send(self, event: str, incident: Incident) -> None: ...


class NoAlerts:
    """Used when no webhook is configured: the log still says everything."""

    def send(self, event: str, incident: Incident) -> None:
        return None


def alert_text(event: str, incident: Incident) -> str:
    """The human sentence of an alert, also usable as a chat message as is."""
    if event == "detected":
        return f"[mlopsdeploy] {incident.host} is failing: {incident.symptom}"
    if event == "recovered":
        took = incident.seconds_to_recover or 0.0
        how = ", ".join(s.action for s in incident.actions) or "no action needed"
        notices = [
            s.result.removeprefix("ok; ") for s in incident.actions if s.result.startswith("ok; ")
        ]
        text = f"[mlopsdeploy] {incident.host} recovered after {took:.1f}s ({how})"
        return "; ".join([text, *notices])
    last = incident.steps[-1].reason if incident.steps else incident.symptom
    return (
        f"[mlopsdeploy] GAVE UP on {incident.host} after {len(incident.actions)} repairs: "
        f"{last}. Still probing; a human is needed."
    )


class Webhook:
    """POSTs {"event", "host", "text", "incident"} to a URL; a failed alert never stops repairs."""

    def __init__(
        self, url: str, timeout_s: float = 5.0, transport: httpx.BaseTransport | None = None
    ):
        self._url = url
        self._client = httpx.Client(timeout=timeout_s, transport=transport)

    def __repr__(self) -> str:
        return "Webhook(<url hidden>)"

    def send(self, event: str, incident: Incident) -> None:
        body = {
            "event": event,
            "host": incident.host,
            "text": alert_text(event, incident),
            "incident": incident.to_dict(),
        }
        try:
            response = self._client.post(self._url, json=body)
        except httpx.HTTPError as exc:
            log.warning(
                "alert %s for %s not delivered: %s", event, incident.host, type(exc).__name__
            )
            return
        if response.status_code >= 300:
            log.warning(
                "alert %s for %s rejected by the webhook: HTTP %d",
                event,
                incident.host,
                response.status_code,
            )
