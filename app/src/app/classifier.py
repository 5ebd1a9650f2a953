"""The local product: a transformers sentiment pipeline behind a micro-batcher.

A forward pass over 16 sentences costs far less than 16 passes over one, so concurrent requests
are queued and classified together. The batcher only waits for company when the previous batch
had some (traffic is concurrent): a lone client never pays the collection delay.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Prediction:
    label: str
    score: float


ClassifyBatch = Callable[[list[str]], list[Prediction]]


def load_pipeline(model: str, threads: int) -> Any:
    """The sentiment-analysis pipeline for a Hub id or a local model dir, on `threads` CPU threads.

    "text-classification" is the task "sentiment-analysis" is an alias of (the typed name).
    """
    import torch
    from transformers import pipeline
    from transformers.utils import logging as transformers_logging

    torch.set_num_threads(threads)
    # Progress bars are for terminals; in a service's journal they are noise.
    transformers_logging.disable_progress_bar()
    return pipeline("text-classification", model=model)


def pipeline_classifier(pipe: Any) -> ClassifyBatch:
    """A batch function over `pipe`: one forward pass for the whole list, truncating long texts.

    Texts are cut at what the model can embed: a tokenizer saved without `model_max_length`
    would otherwise let a long text overflow the position embeddings and fail the whole batch.
    """
    positions = getattr(pipe.model.config, "max_position_embeddings", None) or 512
    max_length = min(pipe.tokenizer.model_max_length, positions)

    def classify(texts: list[str]) -> list[Prediction]:
        outputs = pipe(texts, batch_size=len(texts), truncation=True, max_length=max_length)
        return [Prediction(str(out["label"]), float(out["score"])) for out in outputs]

    return classify


class MicroBatcher:
    """Classifies texts from many concurrent callers in shared forward passes.

    One worker task takes the first queued text, everything else already queued, and — when the
    last batch showed concurrency — whatever arrives within `max_wait` seconds, up to `max_size`.
    The batch runs in a dedicated thread, so the event loop keeps serving (and the Inference API
    product cannot starve it of threads). Results go back to each caller's future in order.
    """

    def __init__(
        self,
        classify_batch: ClassifyBatch,
        *,
        max_size: int,
        max_wait: float,
        on_batch: Callable[[int], None] = lambda size: None,
    ) -> None:
        self._classify_batch = classify_batch
        self._max_size = max_size
        self._max_wait = max_wait
        self._on_batch = on_batch
        self._queue: asyncio.Queue[tuple[str, asyncio.Future[Prediction]]] = asyncio.Queue()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="classifier")
        self._worker: asyncio.Task[None] | None = None
        self._last_size = 0

    def start(self) -> None:
        self._worker = asyncio.get_running_loop().create_task(self._run(), name="micro-batcher")

    async def stop(self) -> None:
        """Stop the worker, fail what is still queued, and wait for a running batch to end."""
        if self._worker is not None:
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker
        queued = []
        while not self._queue.empty():
            queued.append(self._queue.get_nowait())
        _fail(queued, RuntimeError("the classifier is shutting down"))
        await asyncio.to_thread(self._executor.shutdown, wait=True)

    async def classify(self, texts: Sequence[str]) -> list[Prediction]:
        loop = asyncio.get_running_loop()
        futures = [loop.create_future() for _ in texts]
        for text, future in zip(texts, futures, strict=True):
            self._queue.put_nowait((text, future))
        return list(await asyncio.gather(*futures))

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = await self._collect()
            live = [(text, future) for text, future in batch if not future.done()]
            if not live:
                continue
            texts = [text for text, _ in live]
            try:
                predictions = await loop.run_in_executor(
                    self._executor, self._classify_batch, texts
                )
            except asyncio.CancelledError:
                _fail(live, RuntimeError("the classifier is shutting down"))
                raise
            except Exception as error:
                _fail(live, error)
                continue
            self._on_batch(len(live))
            for (_, future), prediction in zip(live, predictions, strict=True):
                if not future.done():
                    future.set_result(prediction)

    async def _collect(self) -> list[tuple[str, asyncio.Future[Prediction]]]:
        batch = [await self._queue.get()]
        loop = asyncio.get_running_loop()
        wait = self._max_wait if self._last_size > 1 else 0.0
        deadline = loop.time() + wait
        while len(batch) < self._max_size:
            if not self._queue.empty():
                batch.append(self._queue.get_nowait())
                continue
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            try:
                batch.append(await asyncio.wait_for(self._queue.get(), remaining))
            except TimeoutError:
                break
        self._last_size = len(batch)
        return batch


def _fail(batch: list[tuple[str, asyncio.Future[Prediction]]], error: Exception) -> None:
    for _, future in batch:
        if not future.done():
            future.set_exception(error)
