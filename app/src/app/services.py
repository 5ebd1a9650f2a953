"""What the JSON routes and the UI share: settings, metrics and the two products."""

from __future__ import annotations

from dataclasses import dataclass

from app.config import Settings
from app.inference_api import InferenceApi
from app.local_model import LocalModel
from app.metrics import Metrics
from app.validation import Limits


@dataclass(frozen=True)
class Services:
    settings: Settings
    metrics: Metrics
    model: LocalModel
    api: InferenceApi

    @property
    def limits(self) -> Limits:
        return Limits(self.settings.max_text_chars, self.settings.max_texts)

    def count_error(self, kind: str) -> None:
        self.metrics.errors.labels(kind).inc()
