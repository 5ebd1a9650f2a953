"""An app spec's readiness, asked from the control machine: its URL, then every check's answer.

This is what "healthy" means for an app with a spec, for the deploy's gate, the resilience
suite and the watchdog alike. A check is a real request (an HTTP JSON call, or a Gradio endpoint
through ``gradio_client``, as the app's own UI calls it) and passes only with the expected
answer; HTTP 200 alone counts only when the spec says ``url_alone = true``.

Failures read ``check '<name>' ...`` when the app answered *wrongly* (final: waiting does not fix
a wrong label) and otherwise name the request that did not answer (the app may still be starting).
"""

from __future__ import annotations

import json
from typing import Any

import httpx

from mlopsdeploy.deployment.control.appspec import AppSpec, Check, jsonpath_value

WRONG_ANSWER = "check "


def check_app(client: httpx.Client, spec: AppSpec) -> str | None:
    """One round of ``spec``'s readiness against ``client``'s base URL: None, or what failed."""
    if spec.ready_url is not None:
        ready = client.get(spec.ready_url)
        if ready.status_code != 200:
            return f"{spec.ready_url} answered {ready.status_code}: {ready.text[:200]}"
    gradio = None
    for check in spec.checks:
        if check.kind == "http":
            response = client.request(check.method, check.target, json=check.body)
            if response.status_code != 200:
                return f"{check.method} {check.target} answered {response.status_code}"
            answer: Any = _json_or_text(response)
        else:
            try:
                if gradio is None:
                    gradio = _gradio_client(str(client.base_url), client.timeout.read)
                answer = gradio.predict(*check.args, api_name=check.target)
            except Exception as error:  # gradio_client raises many kinds while an app starts
                failed = f"{type(error).__name__}: {error}"
                return f"Gradio endpoint {check.target} did not answer: {failed}"
        wrong = _wrong_answer(check, answer)
        if wrong is not None:
            return f"{WRONG_ANSWER}{check.name!r} ({check.target}): {wrong}"
    return None


def _gradio_client(url: str, timeout: float | None) -> Any:
    """A gradio_client for ``url`` that downloads nothing and sends no analytics."""
    from gradio_client import Client  # imported when needed: it takes a second to load

    return Client(
        url,
        verbose=False,
        download_files=False,
        analytics_enabled=False,
        httpx_kwargs={"timeout": timeout or 10.0},
    )


def _json_or_text(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return response.text


def _wrong_answer(check: Check, answer: Any) -> str | None:
    """Why ``answer`` is not what ``check`` expects, or None when it is."""
    if isinstance(answer, (tuple, list)) and check.kind == "gradio":
        index = check.output or 0
        if index >= len(answer):
            return f"has {len(answer)} outputs, no output {index}"
        answer = answer[index]
    if check.expect == "label":
        label = answer.get("label") if isinstance(answer, dict) else answer
        if str(label) != check.value:
            return f"label {label}, expected {check.value}"
        return None
    if check.expect == "contains":
        text = answer if isinstance(answer, str) else json.dumps(answer)
        if check.value not in text:
            return f"answer {text[:200]!r} does not contain {check.value!r}"
        return None
    try:
        found = jsonpath_value(answer, check.jsonpath)
    except (KeyError, IndexError, TypeError):
        return f"{check.jsonpath} not in the answer {json.dumps(answer)[:200]}"
    if str(found) != check.value:
        return f"{check.jsonpath} is {found!r}, expected {check.value!r}"
    return None
