"""The data split: seeded and deterministic, and nothing held out leaks into training."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from mlopsdeploy.model import sources, tweets
from mlopsdeploy.model.canaries import CANARIES, normalized
from mlopsdeploy.model.dataset import Splits, make_splits
from mlopsdeploy.model.recipe import Example, Settings, holdout_split

SMALL = Settings(train_tweets=500, train_templates=300)


def _splits(settings: Settings) -> Splits:
    try:
        inputs = (sources.TWEETS.path(), sources.ADJECTIVES.path(), sources.VADER.path())
    except sources.MissingSource as missing:
        pytest.skip(str(missing))
    return make_splits(settings, *inputs)


@pytest.fixture(scope="module")
def splits() -> Splits:
    return _splits(SMALL)


def test_split_is_deterministic(splits: Splits) -> None:
    assert _splits(SMALL) == splits


def test_another_seed_gives_another_split(splits: Splits) -> None:
    other = _splits(dataclasses.replace(SMALL, seed=SMALL.seed + 1))
    assert other.held_out_adjectives != splits.held_out_adjectives
    assert other.held_out_tweets != splits.held_out_tweets


def test_holdout_split_ignores_order_and_neighbours() -> None:
    words = [f"word{i}" for i in range(2000)]
    train, held = holdout_split(words, str, 0.2, seed=7)
    _, held_rev = holdout_split(reversed(words[:1000]), str, 0.2, seed=7)
    assert set(held_rev) == set(held) & set(words[:1000])
    assert 300 < len(held) < 500 and len(train) + len(held) == 2000


def _words(examples: list[Example]) -> set[str]:
    return {word for e in examples for word in re.findall(r"[a-z]+", e.text.lower())}


def test_no_held_out_adjective_in_training_data(splits: Splits) -> None:
    held = set(splits.held_out_adjectives)
    assert held and not held & set(splits.adjectives)
    assert not held & _words(splits.train_templates)
    # ... while the held-out templates are made of exactly those adjectives
    assert held <= _words(splits.held_out_templates)


def test_no_held_out_tweet_in_training_data(splits: Splits) -> None:
    train = {e.text.lower() for e in splits.train}
    assert not any(e.text.lower() in train for e in splits.held_out_tweets)
    assert 0.08 < len(splits.held_out_tweets) / 23000 < 0.12


def test_canaries_never_train(splits: Splits) -> None:
    full = _splits(dataclasses.replace(SMALL, train_templates=100_000))
    train = {normalized(e.text) for e in full.train}
    assert not any(normalized(c.text) in train for c in CANARIES)


def test_training_set_has_the_requested_size(splits: Splits) -> None:
    assert (len(splits.train_tweets), len(splits.train_templates)) == (500, 300)
    assert len(splits.train) == 800


def test_tweet_cleaning_and_dedup(tmp_path: Path) -> None:
    csv = tmp_path / "corpus.csv"
    csv.write_bytes(
        b"sentiment,confidence,text\n"
        b"positive,0.9,@united thanks &amp; see http://t.co/x\n"
        b"positive,,@delta thanks &amp; see http://t.co/y\n"
        b"neutral,1,just a flight\n"
        b"negative,1,same text\n"
        b"positive,1,Same text\n"
        b"negative,0.4,late again\xd1\n"
    )
    read = tweets.read(csv)
    assert [(t.text, t.label) for t in read] == [
        ("@user thanks & see http", 1),
        ("late again\u2014", 0),
    ]
    assert read[0].confidence == 1.0
