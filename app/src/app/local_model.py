"""The local product's life cycle: load the model once, batch its work, say whether it is ready.

A model that fails to load does not stop the service: /livez stays up and /readyz reports the
failure, which tells whoever probes the service far more than a crash loop would.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path

from app.classifier import (
    ClassifyBatch,
    MicroBatcher,
    Prediction,
    load_pipeline,
    pipeline_classifier,
)
from app.errors import AppError
from app.onnx_classifier import OnnxClassifier, onnx_file
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


@dataclass(frozen=True)
class Loaded:
    """A loaded model: its batch function and the version that answers."""

    classify: ClassifyBatch
    version: str | None


def resolve_runtime(model: str, requested: str) -> str:
    """`onnx` or `torch`: `auto` is onnx for a model dir carrying an ONNX file, else torch."""
    if requested != "auto":
        return requested
    return "onnx" if onnx_file(model) else "torch"


def load(model: str, runtime: str, threads: int) -> Loaded:
    """Load `model` on `runtime` ("onnx" or "torch"); raises whatever loading raises."""
    if runtime == "onnx":
        return Loaded(OnnxClassifier(Path(model), threads), model_version(model, None))
    pipe = load_pipeline(model, threads)
    return Loaded(pipeline_classifier(pipe), model_version(model, pipe))


class LocalModel:
    """The sentiment model named by `model` (Hub id or directory), once `start()` has loaded it.

    + runtime: "onnx", "torch" or "auto" (see `resolve_runtime`)
    """

    def __init__(
        self,
        model: str,
        *,
        runtime: str = "auto",
        threads: int,
        batch_max_size: int,
        batch_wait: float,
        on_batch: Callable[[int], None],
    ) -> None:
        self.model = model
        self.runtime = resolve_runtime(model, runtime)
        self.version: str | None = None
        self._threads = threads
        self._batch_max_size = batch_max_size
        self._batch_wait = batch_wait
        self._on_batch = on_batch
        self._batcher: MicroBatcher | None = None
        self._problem = "the model is loading"
        self._loading: Future[Loaded] | None = None

    def begin_loading(self) -> None:
        """Start loading in a thread now, so the caller can import the UI meanwhile.

        The thread is a daemon: an app that is built but never started must not keep the
        interpreter alive.
        """
        if self._loading is not None:
            return
        loading: Future[Loaded] = Future()
        self._loading = loading

        def run() -> None:
            started = time.monotonic()
            try:
                loading.set_result(load(self.model, self.runtime, self._threads))
            except BaseException as error:
                loading.set_exception(error)
            else:
                logger.info("Model loaded in %.2fs", time.monotonic() - started)

        threading.Thread(target=run, name="model-loader", daemon=True).start()

    async def start(self) -> None:
        """Finish loading the model (begun by `begin_loading` or now) and start batching."""
        self.begin_loading()
        assert self._loading is not None
        try:
            loaded = await asyncio.wrap_future(self._loading)
        except Exception as error:
            self._problem = f"the model {self.model!r} failed to load: {_short(error)}"
            logger.error("%s", self._problem)
            return
        self.version = loaded.version
        self._batcher = MicroBatcher(
            loaded.classify,
            max_size=self._batch_max_size,
            max_wait=self._batch_wait,
            on_batch=self._on_batch,
        )
        self._batcher.start()
        logger.info(
            "Serving model %s (version %s) on %s",
            self.model,
            self.version or "unknown",
            self.runtime,
        )

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
