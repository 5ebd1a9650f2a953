"""The chat-completion answers the stand-in gives, as the OpenAI-style JSON InferenceClient reads.

Deterministic on purpose: the reply quotes the prompt, so a test sees its request round-trip.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

MODEL_NAME = "mlopsdeploy/standin"


def reply_for(prompt: str, max_tokens: int | None) -> list[str]:
    """The reply as tokens (words with their leading space), at most `max_tokens` of them.

    It quotes the prompt so that a test can tell the answer was made for its request.
    """
    words = f"Stand-in answer to: {' '.join(prompt.split())}".split(" ")
    tokens = [words[0]] + [f" {word}" for word in words[1:]]
    return tokens if max_tokens is None else tokens[: max(max_tokens, 1)]


def last_user_message(messages: Any) -> str:
    """The text of the last user message of an OpenAI-style `messages` list ("" when absent)."""
    if not isinstance(messages, list):
        return ""
    for message in reversed(messages):
        if isinstance(message, dict) and message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, str):
                return content
            if isinstance(content, list):
                return " ".join(
                    part.get("text", "")
                    for part in content
                    if isinstance(part, dict) and isinstance(part.get("text"), str)
                )
    return ""


def _base() -> dict[str, Any]:
    return {
        "id": "standin",
        "created": int(time.time()),
        "model": MODEL_NAME,
        "system_fingerprint": "",
    }


def completion(tokens: list[str]) -> dict[str, Any]:
    """A whole ``chat.completion`` answer."""
    return {
        **_base(),
        "object": "chat.completion",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "".join(tokens)},
                "finish_reason": "stop",
                "logprobs": None,
            }
        ],
        "usage": {
            "prompt_tokens": 0,
            "completion_tokens": len(tokens),
            "total_tokens": len(tokens),
        },
    }


def completion_chunks(tokens: list[str]) -> Iterator[dict[str, Any]]:
    """The streamed answer: one ``chat.completion.chunk`` per token, the last one says stop."""
    base = _base()
    for index, token in enumerate(tokens):
        last = index == len(tokens) - 1
        yield {
            **base,
            "object": "chat.completion.chunk",
            "choices": [
                {
                    "index": 0,
                    "delta": {"role": "assistant", "content": token},
                    "finish_reason": "stop" if last else None,
                    "logprobs": None,
                }
            ],
        }
