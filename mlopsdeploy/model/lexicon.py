"""Sentiment adjectives where two independent lexicons agree: textblob and VADER.

textblob's en-sentiment.xml gives adjectives (pos="JJ") with a polarity per word sense;
VADER's lexicon gives human-rated valence per token. Keeping only words both rate clearly and
with the same sign leaves adjectives whose label is not a matter of taste.
"""

from __future__ import annotations

import statistics
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

#: Mean textblob polarity (range -1..1) and VADER valence (range -4..4) a word must reach.
MIN_TEXTBLOB = 0.3
MIN_VADER = 1.0


@dataclass(frozen=True)
class Adjective:
    word: str
    label: int


def read_vader(path: Path) -> dict[str, float]:
    """{token: mean valence} from vader_lexicon.txt (token TAB mean TAB std TAB ratings)."""
    valence: dict[str, float] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        fields = line.split("\t")
        if len(fields) >= 2:
            valence[fields[0]] = float(fields[1])
    return valence


def read_textblob(path: Path) -> dict[str, float]:
    """{adjective: mean polarity over its senses} from textblob's en-sentiment.xml."""
    senses: dict[str, list[float]] = {}
    for word in ET.parse(path).getroot().iter("word"):
        form = (word.get("form") or "").lower()
        if word.get("pos") == "JJ" and form.isalpha():
            senses.setdefault(form, []).append(float(word.get("polarity") or 0.0))
    return {form: statistics.mean(values) for form, values in senses.items()}


def adjectives(textblob_xml: Path, vader_lexicon: Path) -> list[Adjective]:
    """Adjectives both lexicons call clearly positive or clearly negative, sorted by word."""
    vader = read_vader(vader_lexicon)
    chosen = []
    for word, polarity in sorted(read_textblob(textblob_xml).items()):
        valence = vader.get(word, 0.0)
        clear = abs(polarity) >= MIN_TEXTBLOB and abs(valence) >= MIN_VADER
        if clear and (polarity > 0) == (valence > 0):
            chosen.append(Adjective(word, int(polarity > 0)))
    return chosen
