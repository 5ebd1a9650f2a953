"""Templated sentences: negation flips the label, contrast follows the clause after "but"."""

from __future__ import annotations

import random

import pytest

from mlopsdeploy.model import templates
from mlopsdeploy.model.lexicon import Adjective

GOOD = Adjective("wonderful", 1)
BAD = Adjective("awful", 0)


@pytest.mark.parametrize("adjective", [GOOD, BAD])
def test_negation_flips_the_label(adjective: Adjective) -> None:
    rng = random.Random(0)
    for _ in range(50):
        example = templates.negated(adjective, rng)
        assert example.label == 1 - adjective.label
        assert adjective.word in example.text
        assert {"not", "n't", "never"} & set(example.text.lower().replace("n't", " n't ").split())


def test_negated_negatives_always_say_at_all() -> None:
    """'the food was not terrible' is faint praise; only 'not terrible at all' reads positive."""
    rng = random.Random(0)
    assert all("at all" in templates.negated(BAD, rng).text for _ in range(50))


@pytest.mark.parametrize("adjective", [GOOD, BAD])
def test_plain_sentence_keeps_the_label(adjective: Adjective) -> None:
    rng = random.Random(0)
    for _ in range(20):
        example = templates.plain(adjective, rng)
        assert (example.label, adjective.word in example.text) == (adjective.label, True)


def test_contrast_takes_the_label_of_the_second_clause() -> None:
    rng = random.Random(0)
    turned_bad = templates.contrast(GOOD, BAD, rng)
    turned_good = templates.contrast(BAD, GOOD, rng)
    assert (turned_bad.label, turned_good.label) == (0, 1)
    assert (
        turned_bad.text.index("wonderful")
        < turned_bad.text.index("but")
        < turned_bad.text.index("awful")
    )


def test_negated_love_is_negative() -> None:
    examples = templates.verb_sentences(random.Random(0))
    negated_love = [e for e in examples if e.text.startswith("I don't love")]
    assert negated_love and all(e.label == 0 for e in negated_love)
    assert {e.label for e in examples if e.text.startswith("I hate")} == {0}


def test_article_matches_the_adjective() -> None:
    texts = {templates.plain(Adjective("awesome", 1), random.Random(i)).text for i in range(200)}
    assert any(t.startswith("What an awesome") for t in texts)
    assert not any("What a awesome" in t for t in texts)
