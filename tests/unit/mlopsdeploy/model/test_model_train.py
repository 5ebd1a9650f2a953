"""Training mechanics that decide reproducibility and cost, without training."""

from __future__ import annotations

import random

import pytest

from mlopsdeploy.model import sources
from mlopsdeploy.model.train import BUCKET_BATCHES, length_batches


def test_length_batches_cover_every_example_once_and_group_lengths() -> None:
    rng = random.Random(1)
    lengths = [rng.randint(5, 64) for _ in range(32 * BUCKET_BATCHES * 2 + 7)]
    batches = length_batches(lengths, 32, seed=3)
    assert sorted(i for batch in batches for i in batch) == list(range(len(lengths)))
    padded = sum(len(b) * max(lengths[i] for i in b) for b in batches)
    assert padded < 1.1 * sum(lengths)  # padding to max_length=64 would cost ~1.85x
    assert batches == length_batches(lengths, 32, seed=3)
    assert batches != length_batches(lengths, 32, seed=4)


def test_the_classifier_head_is_seeded() -> None:
    torch = pytest.importorskip("torch")
    from mlopsdeploy.model.train import load

    try:
        encoder = sources.ENCODER.path()
    except sources.MissingSource as missing:
        pytest.skip(str(missing))
    first, _ = load(encoder, seed=5)
    second, tokenizer = load(encoder, seed=5)
    assert torch.equal(first.classifier.weight, second.classifier.weight)
    assert first.config.id2label == {0: "NEGATIVE", 1: "POSITIVE"}
    assert tokenizer("Not bad at all.")["input_ids"][0] == tokenizer.cls_token_id
