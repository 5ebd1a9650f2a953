"""Turning raw request bodies into checked inputs, or a 4xx error that names the problem.

Bodies are parsed here rather than by FastAPI's model binding so that every failure (bad bytes,
bad JSON, wrong shape, wrong text) gets one short message in the app's error format, and so that
nothing a client sends can reach the model in a form that makes it fail with a 5xx.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from typing import Any

from app.errors import AppError


class InputError(AppError):
    """The request is wrong; `str()` says how."""

    kind = "invalid_input"

    def __init__(self, message: str, status: int = 422) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Limits:
    max_text_chars: int
    max_texts: int


@dataclass(frozen=True)
class SentimentRequest:
    texts: list[str]
    batch: bool  # {"texts": [...]} rather than {"text": "..."}: answer with "results"


def parse_sentiment(body: bytes, limits: Limits) -> SentimentRequest:
    """`{"text": str}` or `{"texts": [str, ...]}`, every text checked against `limits`."""
    data = _json_object(body)
    if ("text" in data) == ("texts" in data):
        raise InputError('the body needs exactly one of "text" (a string) or "texts" (a list)')
    if "text" in data:
        return SentimentRequest([check_text(data["text"], '"text"', limits)], batch=False)
    texts = data["texts"]
    if not isinstance(texts, list):
        raise InputError(f'"texts" must be a list of strings, not {_json_type(texts)}')
    if not texts:
        raise InputError('"texts" is empty')
    if len(texts) > limits.max_texts:
        raise InputError(f'"texts" has {len(texts)} items; the maximum is {limits.max_texts}')
    checked = [check_text(text, f'"texts"[{index}]', limits) for index, text in enumerate(texts)]
    return SentimentRequest(checked, batch=True)


def parse_generate(body: bytes, limits: Limits) -> str | None:
    """The free prompt of `{"prompt": str}`; None (a positive thought) for an empty body or `{}`."""
    if not body.strip():
        return None
    prompt = _json_object(body).get("prompt")
    return None if prompt is None else check_text(prompt, '"prompt"', limits)


def check_text(value: Any, name: str, limits: Limits) -> str:
    """`value` if it is text the model can take: a non-blank string within the length limit."""
    if not isinstance(value, str):
        raise InputError(f"{name} must be a string, not {_json_type(value)}")
    if not value.strip():
        raise InputError(f"{name} is empty or only whitespace")
    if len(value) > limits.max_text_chars:
        raise InputError(
            f"{name} has {len(value)} characters; the maximum is {limits.max_text_chars}"
        )
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise InputError(f"{name} is not valid Unicode (it holds a lone surrogate)") from None
    return value


def _json_object(body: bytes) -> dict[str, Any]:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as error:
        raise InputError(
            f"the body is not valid UTF-8 (bad byte at position {error.start})", status=400
        ) from None
    if not text.strip():
        raise InputError("the body is empty; send a JSON object", status=400)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise InputError(
            f"the body is not valid JSON: {error.msg} (line {error.lineno}, column {error.colno})",
            status=400,
        ) from None
    except RecursionError:
        raise InputError("the body is not valid JSON: nested too deeply", status=400) from None
    except ValueError:
        # Valid JSON that Python refuses to read: an integer longer than its int-from-text limit
        # (which guards against quadratic-time conversion).
        raise InputError(
            f"the body holds a number of more than {sys.get_int_max_str_digits()} digits",
            status=400,
        ) from None
    if not isinstance(data, dict):
        raise InputError(f"the body must be a JSON object, not {_json_type(data)}")
    return data


def _json_type(value: Any) -> str:
    names = {bool: "a boolean", int: "a number", float: "a number", str: "a string"}
    names |= {list: "a list", dict: "an object", type(None): "null"}
    return names.get(type(value), type(value).__name__)
