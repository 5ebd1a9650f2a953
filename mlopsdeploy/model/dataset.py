"""Assemble the training set and the held-out evaluation sets from the packaged inputs.

Everything here is a pure function of the settings and the input files, so `evaluate` can
rebuild exactly the held-out sets a model was gated on.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

from mlopsdeploy.model import lexicon, templates, tweets
from mlopsdeploy.model.canaries import CANARIES, normalized
from mlopsdeploy.model.recipe import Example, Settings, holdout_split

#: Template rounds per adjective: enough variety to sample `train_templates` from.
TRAIN_ROUNDS = 4
HELD_OUT_ROUNDS = 2


@dataclass(frozen=True)
class Splits:
    #: train_tweets + train_templates, shuffled.
    train: list[Example]
    train_tweets: list[Example]
    train_templates: list[Example]
    held_out_tweets: list[Example]
    held_out_templates: list[Example]
    adjectives: list[str]
    held_out_adjectives: list[str]


def _unique(examples: list[Example]) -> list[Example]:
    return list({example.text: example for example in examples}.values())


def make_splits(settings: Settings, tweet_csv: Path, textblob_xml: Path, vader: Path) -> Splits:
    """Seeded, deterministic split: 10 % of tweets and 20 % of adjectives never train."""
    rng = random.Random(settings.seed)
    train_pool, held_tweets = holdout_split(
        tweets.read(tweet_csv), lambda t: t.text.lower(), settings.tweet_holdout, settings.seed
    )
    confident = [t for t in train_pool if t.confidence >= settings.min_confidence]
    train_tweets = rng.sample(confident, min(settings.train_tweets, len(confident)))

    train_adjs, held_adjs = holdout_split(
        lexicon.adjectives(textblob_xml, vader),
        lambda a: a.word,
        settings.adjective_holdout,
        settings.seed,
    )
    canaries = {normalized(canary.text) for canary in CANARIES}
    templated = _unique(
        templates.adjective_sentences(train_adjs, TRAIN_ROUNDS, rng) + templates.verb_sentences(rng)
    )
    templated = [example for example in templated if normalized(example.text) not in canaries]
    train_templates = rng.sample(templated, min(settings.train_templates, len(templated)))
    held_templates = _unique(templates.adjective_sentences(held_adjs, HELD_OUT_ROUNDS, rng))

    tweet_examples = [Example(t.text, t.label) for t in train_tweets]
    train = tweet_examples + train_templates
    rng.shuffle(train)
    return Splits(
        train=train,
        train_tweets=tweet_examples,
        train_templates=train_templates,
        held_out_tweets=[Example(t.text, t.label) for t in held_tweets],
        held_out_templates=held_templates,
        adjectives=[a.word for a in train_adjs],
        held_out_adjectives=[a.word for a in held_adjs],
    )
