"""Keeping the Hugging Face token out of logs and answers.

The app's own messages never include the token, but third-party code may (an exception text, a
debug log of a header); this is the safety net that catches what slips through.
"""

from __future__ import annotations

import logging

MASK = "[REDACTED]"


def redact(text: str, secret: str | None) -> str:
    """`text` with every occurrence of `secret` masked."""
    return text.replace(secret, MASK) if secret else text


class RedactingFilter(logging.Filter):
    """A handler filter that masks `secret` in every record's final message."""

    def __init__(self, secret: str | None) -> None:
        super().__init__()
        self._secret = secret

    def filter(self, record: logging.LogRecord) -> bool:
        if self._secret:
            message = record.getMessage()
            if record.exc_info:
                message += "\n" + logging.Formatter().formatException(record.exc_info)
                record.exc_info = None
                record.exc_text = None
            record.msg = redact(message, self._secret)
            record.args = None
        return True
