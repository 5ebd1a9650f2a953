"""Fixtures for the app's tests: throwaway models with a known wrong answer, and served apps.

The tiny models are built here, at test time, so that readiness can be shown to fail for a model
that loads fine but answers wrongly. Tests that need correct labels use `sentiment_model_dir`.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

import pytest
from app.config import Settings
from app.factory import create_app
from app.validation import Limits
from fastapi.testclient import TestClient

LABELS = {0: "NEGATIVE", 1: "POSITIVE"}


def build_one_label_model(directory: Path, label: str) -> Path:
    """A tiny BERT classifier whose bias makes it answer `label` for every text."""
    import torch
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizer

    directory.mkdir(parents=True, exist_ok=True)
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "i", "am", "happy", "worst", "day", "!"]
    (directory / "vocab.txt").write_text("\n".join(vocab) + "\n")
    tokenizer = BertTokenizer(
        vocab_file=str(directory / "vocab.txt"), do_lower_case=True, model_max_length=32
    )
    config = BertConfig(
        vocab_size=len(vocab),
        hidden_size=8,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=16,
        max_position_embeddings=32,
        id2label=LABELS,
        label2id={name: index for index, name in LABELS.items()},
    )
    torch.manual_seed(0)
    model = BertForSequenceClassification(config)
    with torch.no_grad():
        model.classifier.weight.zero_()
        model.classifier.bias.copy_(
            torch.tensor([8.0 if name == label else -8.0 for name in LABELS.values()])
        )
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


@pytest.fixture(scope="session")
def always_positive_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_one_label_model(tmp_path_factory.mktemp("always-positive"), "POSITIVE")


@pytest.fixture(scope="session")
def always_negative_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_one_label_model(tmp_path_factory.mktemp("always-negative"), "NEGATIVE")


@pytest.fixture(scope="session")
def api_token() -> str:
    """A fresh fake Hugging Face token per run: tests assert it never leaks."""
    return "hf_" + secrets.token_hex(16)


ServeInProcess = Callable[[Settings], AbstractContextManager[TestClient]]


@contextmanager
def _serve_in_process(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as client:
        yield client


@pytest.fixture(scope="session")
def serve() -> ServeInProcess:
    """`with serve(settings) as client:` runs the app in-process, lifespan (model load) included."""
    return _serve_in_process


@pytest.fixture(scope="session")
def small_limits() -> Limits:
    """Input limits small enough that generated inputs often cross them."""
    return Limits(max_text_chars=50, max_texts=4)


@pytest.fixture(scope="session")
def positive_client(
    serve: ServeInProcess, always_positive_model: Path, small_limits: Limits
) -> Iterator[TestClient]:
    """An app whose model says POSITIVE to everything: routes work, readiness must fail."""
    settings = Settings(
        model=str(always_positive_model),
        max_text_chars=small_limits.max_text_chars,
        max_texts=small_limits.max_texts,
    )
    with serve(settings) as client:
        yield client


@pytest.fixture(scope="session")
def real_client(serve: ServeInProcess, sentiment_model_dir: Path) -> Iterator[TestClient]:
    """An app on the trained offline model (skips until it is built)."""
    with serve(Settings(model=str(sentiment_model_dir))) as client:
        yield client


UiCall = Callable[..., list[tuple[str, Any]]]


def _call_ui(client: TestClient, api_name: str, *inputs: Any) -> list[tuple[str, Any]]:
    """Call a named UI event over Gradio's REST API; the (event, data) pairs it streamed back."""
    started = client.post(f"/gradio_api/call/{api_name}", json={"data": list(inputs)})
    assert started.status_code == 200, started.text
    stream = client.get(f"/gradio_api/call/{api_name}/{started.json()['event_id']}")
    events = []
    for block in stream.text.strip().split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
        events.append((fields["event"], json.loads(fields["data"])))
    return events


@pytest.fixture(scope="session")
def call_ui() -> UiCall:
    """`call_ui(client, "classify", "some text")` drives the UI as a browser would."""
    return _call_ui
