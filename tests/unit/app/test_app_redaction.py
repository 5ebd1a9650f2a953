"""The log filter that masks the token wherever third-party code might put it."""

from __future__ import annotations

import io
import logging

from app.redaction import MASK, RedactingFilter, redact


def logger_with_filter(secret: str | None) -> tuple[logging.Logger, io.StringIO]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RedactingFilter(secret))
    logger = logging.getLogger(f"test-redaction-{secret}")
    logger.handlers = [handler]
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    return logger, stream


def test_redact_masks_every_occurrence(api_token: str) -> None:
    assert redact(f"a {api_token} b {api_token}", api_token) == f"a {MASK} b {MASK}"
    assert redact("nothing here", None) == "nothing here"


def test_the_token_is_masked_in_messages_and_arguments(api_token: str) -> None:
    logger, stream = logger_with_filter(api_token)
    logger.info("header Authorization: Bearer %s", api_token)
    logger.info(f"inline {api_token}")
    assert api_token not in stream.getvalue()
    assert stream.getvalue().count(MASK) == 2


def test_the_token_is_masked_in_tracebacks(api_token: str) -> None:
    logger, stream = logger_with_filter(api_token)
    try:
        raise RuntimeError(f"request failed with token {api_token}")
    except RuntimeError:
        logger.exception("call failed")
    output = stream.getvalue()
    assert "RuntimeError: request failed with token" in output
    assert api_token not in output
    assert MASK in output


def test_without_a_token_messages_pass_unchanged() -> None:
    logger, stream = logger_with_filter(None)
    logger.info("plain %s", "message")
    assert stream.getvalue() == "plain message\n"
