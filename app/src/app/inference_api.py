"""The API product: text from a chat model through the Hugging Face Inference API.

Upstream failures become typed errors that carry a status for the JSON API and a sentence for the
UI. The messages are the app's own, never the upstream text: an error body or exception string may
quote request headers, and one of those carries the token.
"""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from pydantic import SecretStr

from app.errors import AppError

if TYPE_CHECKING:
    from huggingface_hub import AsyncInferenceClient

logger = logging.getLogger(__name__)

POSITIVE_THOUGHT_REQUEST = (
    "Write one short, warm and uplifting thought to brighten someone's day. "
    "Answer with the thought only."
)
SYSTEM_PROMPT = "You are a kind, concise assistant."


class ApiError(AppError):
    """The Inference API did not give an answer; `str()` is a message fit for the user."""

    kind = "api_error"
    status = 502


class ApiTimeout(ApiError):
    kind = "api_timeout"
    status = 504


class ApiUnauthorized(ApiError):
    kind = "api_unauthorized"
    status = 502


class ApiOverloaded(ApiError):
    kind = "api_overloaded"
    status = 503


class ApiUnreachable(ApiError):
    kind = "api_unreachable"
    status = 502


class ApiNotConfigured(ApiError):
    """No token or no endpoint: nothing was sent, and the message names the setting to fill in."""

    kind = "not_configured"
    status = 503


class ApiAwaitingHostTrust(ApiError):
    """The deploy withheld the token: the host's new SSH key waits for its owner's confirmation
    (``APP_AWAITING_HOST_TRUST`` holds the key's fingerprint; see mlopsdeploy's docs/deploy.md)."""

    kind = "awaiting_host_trust"
    status = 503


class InferenceApi:
    """Chat completions from `endpoint` (a Hub model id or the URL of a compatible server)."""

    def __init__(
        self, endpoint: str, token: SecretStr | None, *, timeout: float, max_tokens: int
    ) -> None:
        self.endpoint = endpoint
        self._token = token
        self._timeout = timeout
        self._max_tokens = max_tokens
        if self.not_configured:
            logger.warning("The API product answers 503 not_configured: %s", self.not_configured)

    @property
    def not_configured(self) -> str | None:
        """Why no call can succeed, naming the setting to fill in; None when it is configured.

        Without a token the Hugging Face router refuses every call, and without an endpoint a call
        has nowhere to go: saying so up front beats a generic failure whose cause is in a log."""
        if not self.endpoint.strip():
            return (
                "The Inference API is not configured: APP_API_MODEL (--api-model) is empty. "
                "Set it to a Hub model id or the URL of a compatible server."
            )
        if self._token is None or not self._token.get_secret_value().strip():
            return (
                "The Inference API is not configured: HF_TOKEN is not set. Give the app your "
                "Hugging Face token in HF_TOKEN (mlopsdeploy: hf_token_file in hosts.toml)."
            )
        return None

    async def complete(self, prompt: str | None) -> str:
        """The whole answer to `prompt`, or a positive thought when `prompt` is None."""
        self._check_configured()
        async with self._client() as client:
            try:
                output = await client.chat_completion(
                    _messages(prompt), max_tokens=self._max_tokens
                )
            except Exception as error:
                raise self._translate(error) from None
        if not output.choices:
            raise ApiError("The Inference API answered without any text.")
        return output.choices[0].message.content or ""

    async def stream(self, prompt: str | None) -> AsyncIterator[str]:
        """The answer as it grows (each item is the text so far), for the UI."""
        self._check_configured()
        async with self._client() as client:
            text = ""
            try:
                chunks = await client.chat_completion(
                    _messages(prompt), max_tokens=self._max_tokens, stream=True
                )
                async for chunk in chunks:
                    if chunk.choices and chunk.choices[0].delta.content:
                        text += chunk.choices[0].delta.content
                        yield text
            except Exception as error:
                raise self._translate(error) from None

    def _check_configured(self) -> None:
        fingerprint = os.environ.get("APP_AWAITING_HOST_TRUST")
        if fingerprint:
            raise ApiAwaitingHostTrust(
                f"The Inference API is off on this host until its owner confirms its new SSH "
                f"host key ({fingerprint}) with `mlopsdeploy trust`: no token was given to it."
            )
        if self.not_configured:
            raise ApiNotConfigured(self.not_configured)

    def _client(self) -> AsyncInferenceClient:
        """A client per call: a streamed response stays tied to its client until it is closed.

        huggingface_hub is imported here, at the first call: it takes longer to import than the
        rest of the JSON API, and the app's start must not wait for a product nobody called.
        """
        from huggingface_hub import AsyncInferenceClient

        token = self._token.get_secret_value() if self._token else None
        return AsyncInferenceClient(self.endpoint, token=token, timeout=self._timeout)

    def _translate(self, error: Exception) -> ApiError:
        translated = self._classify(error)
        logger.warning(
            "Inference API call failed: %s (%s from %s)",
            translated.kind,
            type(error).__name__,
            self._where(),
        )
        return translated

    def _classify(self, error: Exception) -> ApiError:
        import httpx2
        from huggingface_hub.errors import OverloadedError, TextGenerationError

        if isinstance(error, TimeoutError | httpx2.TimeoutException):
            return ApiTimeout(
                f"The Inference API did not answer within {self._timeout:g} s. Try again later."
            )
        if isinstance(error, httpx2.TransportError | ConnectionError):
            return ApiUnreachable(
                f"Cannot reach the Inference API at {self._where()} (connection refused or "
                "network down). Try again later."
            )
        status = _status_of(error)
        if status in (401, 403):
            return ApiUnauthorized(
                f"The Inference API rejected the token (HTTP {status}). Check HF_TOKEN."
            )
        if status == 503 or isinstance(error, OverloadedError):
            return ApiOverloaded(
                "The Inference API model is overloaded (HTTP 503). Try again in a minute."
            )
        if status == 429:
            return ApiOverloaded("The Inference API rate limit is reached (HTTP 429). Try later.")
        if status is not None:
            return ApiError(f"The Inference API failed (HTTP {status}).")
        if isinstance(error, TextGenerationError):
            return ApiError("The Inference API stopped generating with an error.")
        logger.exception("Unexpected Inference API failure")
        return ApiError("The Inference API call failed unexpectedly.")

    def _where(self) -> str:
        """The endpoint as safe to show: the model on the Hub router, or a URL's origin."""
        parts = urlsplit(self.endpoint)
        if not parts.scheme:
            return f"the Hugging Face router (model {self.endpoint})"
        return f"{parts.scheme}://{parts.hostname}" + (f":{parts.port}" if parts.port else "")


def _messages(prompt: str | None) -> list[dict[str, Any]]:
    return [
        {"role": "system", "content": SYSTEM_PROMPT},
        {"role": "user", "content": POSITIVE_THOUGHT_REQUEST if prompt is None else prompt},
    ]


def _status_of(error: Exception) -> int | None:
    from huggingface_hub.errors import HfHubHTTPError

    if isinstance(error, HfHubHTTPError) and error.response is not None:
        return int(error.response.status_code)
    return None
