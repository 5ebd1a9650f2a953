"""Templated sentences from lexicon adjectives, including negation and contrast.

Tweets alone teach little about negation ("not bad at all") and about which clause of a
contrast carries the verdict, and they cover few everyday adjectives. Sentences built from
lexicon adjectives fill those gaps with labels that follow from the construction.
"""

from __future__ import annotations

import random

from mlopsdeploy.model.lexicon import Adjective
from mlopsdeploy.model.recipe import Example

NOUNS = (
    "movie", "food", "service", "hotel", "flight", "book", "phone", "staff", "game", "show",
    "app", "trip", "meal", "room", "product", "song", "team", "support", "weekend", "class",
)  # fmt: skip
ADVERBS = ("", "", "really ", "very ", "so ", "truly ", "quite ")
PLAIN = (
    "The {noun} was {adverb}{adj}.",
    "This {noun} is {adverb}{adj}.",
    "What {article} {adj} {noun}!",
    "It was {adverb}{adj}.",
    "I found the {noun} {adverb}{adj}.",
    "Honestly, the {noun} is {adj}.",
)
#: Negations that flip any adjective. "at all" makes a negated negative read as praise.
NEGATED = (
    "Not {adj} at all.",
    "The {noun} wasn't {adj} at all.",
    "It was not {adj} at all.",
    "This {noun} is not {adj} at all.",
)
#: Negations that flip positive adjectives only ("the food was not terrible" is faint praise).
NEGATED_POSITIVE = (
    "The {noun} was not {adj}.",
    "This {noun} isn't {adj}.",
    "I would not call the {noun} {adj}.",
    "The {noun} was never {adj}.",
)
#: The clause after "but" carries the verdict.
CONTRAST = (
    "The {noun} was {first}, but the {other} was {adj}.",
    "It looked {first}, but it was {adj}.",
    "The {noun} seemed {first} at first, but it turned out {adj}.",
)
LOVE = ("love", "like", "enjoy", "adore", "recommend", "appreciate")
HATE = ("hate", "dislike", "despise", "detest")
VERB = ("I {verb} this {noun}.", "I really {verb} the {noun}.", "We {verb} it.")
NEGATED_VERB = ("I don't {verb} this {noun}.", "I do not {verb} it.", "I don't really {verb} it.")


def plain(adjective: Adjective, rng: random.Random) -> Example:
    article = "an" if adjective.word[0] in "aeiou" else "a"
    text = rng.choice(PLAIN).format(
        noun=rng.choice(NOUNS), adverb=rng.choice(ADVERBS), adj=adjective.word, article=article
    )
    return Example(text, adjective.label)


def negated(adjective: Adjective, rng: random.Random) -> Example:
    forms = NEGATED + NEGATED_POSITIVE if adjective.label else NEGATED
    text = rng.choice(forms).format(noun=rng.choice(NOUNS), adj=adjective.word)
    return Example(text, 1 - adjective.label)


def contrast(first: Adjective, adjective: Adjective, rng: random.Random) -> Example:
    """A sentence that turns from `first` to `adjective`; labelled by the latter."""
    noun, other = rng.sample(NOUNS, 2)
    text = rng.choice(CONTRAST).format(noun=noun, other=other, first=first.word, adj=adjective.word)
    return Example(text, adjective.label)


def verb_sentences(rng: random.Random) -> list[Example]:
    """'I love/hate ...' and 'I don't love ...'; the verbs are few, so all go to training."""
    examples = []
    for verb in LOVE + HATE:
        label = int(verb in LOVE)
        examples += [
            Example(form.format(verb=verb, noun=rng.choice(NOUNS)), label) for form in VERB
        ]
        if label:
            examples += [
                Example(f.format(verb=verb, noun=rng.choice(NOUNS)), 0) for f in NEGATED_VERB
            ]
    return examples


def adjective_sentences(
    adjectives: list[Adjective], rounds: int, rng: random.Random
) -> list[Example]:
    """Per round and adjective: one plain, one negated, one contrast against the other polarity."""
    by_label = {label: [a for a in adjectives if a.label == label] for label in (0, 1)}
    examples = []
    for _ in range(rounds):
        for adjective in adjectives:
            examples.append(plain(adjective, rng))
            examples.append(negated(adjective, rng))
            if opposites := by_label[1 - adjective.label]:
                examples.append(contrast(rng.choice(opposites), adjective, rng))
    return examples
