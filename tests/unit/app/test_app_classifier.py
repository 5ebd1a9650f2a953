"""The micro-batcher: shared forward passes for concurrent callers, answers in order.

A recording batch function (upper-casing texts) isolates the batching from any model: what is
tested is who gets which answer and how texts are grouped, not what a model predicts.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable

import pytest
from app.classifier import MicroBatcher, Prediction

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class RecordingBatch:
    """A batch function that records each batch and can hold the first one until released."""

    def __init__(self, *, hold_first: bool = False, fail_on: str | None = None) -> None:
        self.batches: list[list[str]] = []
        self.started = threading.Event()
        self.release = threading.Event()
        if not hold_first:
            self.release.set()
        self._fail_on = fail_on

    def __call__(self, texts: list[str]) -> list[Prediction]:
        self.batches.append(texts)
        self.started.set()
        self.release.wait(timeout=30)
        if self._fail_on in texts:
            raise RuntimeError("the model broke")
        return [Prediction(text.upper(), float(len(text))) for text in texts]


Start = Callable[..., MicroBatcher]


@pytest.fixture
async def start() -> AsyncIterator[Start]:
    """Starts batchers over a RecordingBatch and stops them after the test."""
    batchers: list[MicroBatcher] = []

    def start(batch: RecordingBatch, max_size: int = 32, max_wait: float = 0.01) -> MicroBatcher:
        batcher = MicroBatcher(batch, max_size=max_size, max_wait=max_wait)
        batcher.start()
        batchers.append(batcher)
        return batcher

    yield start
    for batcher in batchers:
        await batcher.stop()


async def behind_a_held_batch(
    batcher: MicroBatcher, batch: RecordingBatch, texts: list[str]
) -> list[list[Prediction]]:
    """Classify `texts` from concurrent callers while a first caller's batch is in progress."""
    first = asyncio.ensure_future(batcher.classify(["first"]))
    assert await asyncio.to_thread(batch.started.wait, 30)
    others = [asyncio.ensure_future(batcher.classify([text])) for text in texts]
    await asyncio.sleep(0)  # let every caller enqueue its text
    batch.release.set()
    return await asyncio.gather(first, *others)


async def test_concurrent_callers_share_a_forward_pass_and_get_their_own_answers(
    start: Start,
) -> None:
    batch = RecordingBatch(hold_first=True)
    texts = [f"text {i}" for i in range(15)]
    results = await behind_a_held_batch(start(batch), batch, texts)
    assert [len(texts) for texts in batch.batches] == [1, 15]
    assert results[0] == [Prediction("FIRST", 5.0)]
    assert [result[0].label for result in results[1:]] == [text.upper() for text in texts]


async def test_batches_never_exceed_the_maximum_size(start: Start) -> None:
    batch = RecordingBatch(hold_first=True)
    await behind_a_held_batch(start(batch, max_size=4), batch, [f"t{i}" for i in range(10)])
    assert [len(texts) for texts in batch.batches] == [1, 4, 4, 2]


async def test_max_size_one_classifies_one_text_at_a_time(start: Start) -> None:
    batch = RecordingBatch(hold_first=True)
    await behind_a_held_batch(start(batch, max_size=1), batch, ["a", "b", "c"])
    assert batch.batches == [["first"], ["a"], ["b"], ["c"]]


async def test_one_caller_with_many_texts_gets_them_back_in_order(start: Start) -> None:
    batcher = start(RecordingBatch(), max_size=3)
    texts = [f"sentence {i}" for i in range(8)]
    predictions = await batcher.classify(texts)
    assert [p.label for p in predictions] == [text.upper() for text in texts]


async def test_a_lone_caller_does_not_wait_for_company(start: Start) -> None:
    batcher = start(RecordingBatch(), max_wait=120.0)
    for text in ("one", "two", "three"):
        predictions = await asyncio.wait_for(batcher.classify([text]), timeout=30)
        assert predictions == [Prediction(text.upper(), float(len(text)))]


async def test_a_failed_batch_fails_its_callers_and_the_batcher_goes_on(start: Start) -> None:
    batcher = start(RecordingBatch(fail_on="poison"))
    with pytest.raises(RuntimeError, match="the model broke"):
        await batcher.classify(["poison"])
    assert await batcher.classify(["fine"]) == [Prediction("FINE", 4.0)]


async def test_stop_fails_waiting_callers_instead_of_leaving_them_hanging() -> None:
    batch = RecordingBatch(hold_first=True)
    batcher = MicroBatcher(batch, max_size=1, max_wait=0.0)
    batcher.start()
    first = asyncio.ensure_future(batcher.classify(["first"]))
    assert await asyncio.to_thread(batch.started.wait, 30)
    queued = asyncio.ensure_future(batcher.classify(["queued"]))
    await asyncio.sleep(0)
    stopping = asyncio.ensure_future(batcher.stop())
    await asyncio.sleep(0)
    batch.release.set()
    await stopping
    for caller in (first, queued):
        with pytest.raises(RuntimeError, match="shutting down"):
            await caller
