"""The local product's life cycle: load the model once, batch its work, say whether it is ready.

A model that fails to load does not stop the service: /livez stays up and /readyz reports the
failure, which tells whoever probes the service far more than a crash loop would.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from app.classifier import MicroBatcher, Prediction, load_pipeline, pipeline_classifier
from app.errors import AppError
from app.readiness import canary_failures, model_version

logger = logging.getLogger(__name__)


class ModelUnavailable(AppError):
    """The model is not loaded (still loading, or loading failed); `str()` says which."""

    kind = "model_unavailable"
    status = 503


@dataclass(frozen=True)
class Readiness:
    ready: bool
    reason: str | None = None


class LocalModel:
    """The sentiment model named by `model` (Hub id or directory), once `start()` has loaded it."""

    def __init__(
        self,
        model: str,
        *,
        threads: int,
        batch_max_size: int,
        batch_wait: float,
        on_batch: Callable[[int], None],
    ) -> None:
        self.model = model
        self.version: str | None = None
        self._threads = threads
        self._batch_max_size = batch_max_size
        self._batch_wait = batch_wait
        self._on_batch = on_batch
        self._batcher: MicroBatcher | None = None
        self._problem = "the model is loading"

    async def start(self) -> None:
        """Load the model (in a thread: it takes seconds) and start batching."""
        try:
            pipe = await asyncio.to_thread(load_pipeline, self.model, self._threads)
        except Exception as error:
            self._problem = f"the model {self.model!r} failed to load: {_short(error)}"
            logger.error("%s", self._problem)
            return
        self.version = model_version(self.model, pipe)
        self._batcher = MicroBatcher(
            pipeline_classifier(pipe),
            max_size=self._batch_max_size,
            max_wait=self._batch_wait,
            on_batch=self._on_batch,
        )
        self._batcher.start()
        logger.info("Loaded model %s (version %s)", self.model, self.version or "unknown")

    async def stop(self) -> None:
        if self._batcher is not None:
            await self._batcher.stop()

    async def classify(self, texts: Sequence[str]) -> list[Prediction]:
        if self._batcher is None:
            raise ModelUnavailable(self._problem)
        return await self._batcher.classify(texts)

    async def readiness(self) -> Readiness:
        """Ready when the model is loaded and classifies every canary sentence correctly."""
        try:
            failures = await canary_failures(self.classify)
        except ModelUnavailable as error:
            return Readiness(False, str(error))
        except Exception as error:
            return Readiness(False, f"the model failed on the canary sentences: {_short(error)}")
        if failures:
            return Readiness(False, "; ".join(failures))
        return Readiness(True)


def _short(error: Exception, limit: int = 300) -> str:
    text = " ".join(f"{type(error).__name__}: {error}".split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
