"""Canary sentences: a model that gets any of these wrong must not ship.

The first two are the app's readiness sentences (/readyz asks exactly these), the rest are
everyday sentences, several with negation, which a sentiment model users trust must handle.
They are never used for training: dataset.py drops any training text equal to one of them.
"""

from __future__ import annotations

from mlopsdeploy.model.recipe import Example

READINESS = (
    Example("I am so happy today!", 1),
    Example("This is the worst day ever.", 0),
)
EVERYDAY = (
    Example("Not bad at all.", 1),
    Example("I don't love this.", 0),
    Example("I love this product, it works perfectly.", 1),
    Example("The service was terrible and the staff were rude.", 0),
    Example("What a wonderful surprise, thank you so much!", 1),
    Example("This movie was boring and way too long.", 0),
    Example("The food was not good.", 0),
    Example("Absolutely fantastic experience, highly recommended.", 1),
)
CANARIES = READINESS + EVERYDAY


def normalized(text: str) -> str:
    """Lower-case text without punctuation, to spot a canary hidden in training data."""
    return " ".join("".join(c for c in text.lower() if c.isalnum() or c.isspace()).split())
