"""The ONNX export of a saved model, served by the app's ONNX classifier, answers like torch.

A tiny randomly initialised BERT stands in for the trained model (seconds, not minutes); its
classifier head is scaled up and its bias placed between the texts' logits, so labels differ
between texts and sit far from the boundary, where a numerical difference between the runtimes
could not hide a wrong graph.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from app.onnx_classifier import OnnxClassifier

from mlopsdeploy.model import agreement, export

TEXTS = [
    "",
    "happy",
    "the worst day",
    "i am happy and the day is not the worst day at all",
    " ".join(["happy", "worst", "day", "not"] * 20),  # longer than the model: truncated
]


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch = pytest.importorskip("torch")
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizer

    directory = tmp_path_factory.mktemp("tiny-random")
    words = ["i", "am", "happy", "and", "the", "day", "is", "not", "worst", "at", "all"]
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *words]
    (directory / "vocab.txt").write_text("\n".join(vocab) + "\n")
    labels = {0: "NEGATIVE", 1: "POSITIVE"}
    config = BertConfig(
        vocab_size=len(vocab),
        hidden_size=16,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=32,
        id2label=labels,
        label2id={name: index for index, name in labels.items()},
    )
    tokenizer = BertTokenizer(vocab_file=str(directory / "vocab.txt"), model_max_length=32)
    torch.manual_seed(1)
    model = BertForSequenceClassification(config).eval()
    with torch.no_grad():
        model.classifier.weight.mul_(200)
        logits = model(**tokenizer(TEXTS, padding=True, truncation=True, return_tensors="pt"))
        margins = sorted((logits.logits[:, 1] - logits.logits[:, 0]).tolist())
        model.classifier.bias[1] -= (margins[1] + margins[2]) / 2
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    export.export_fp32(directory)
    export.quantize_int8(directory)
    return directory


def torch_predictions(model_dir: Path, texts: list[str]) -> list[tuple[str, float]]:
    from transformers import pipeline

    pipe = pipeline("text-classification", model=str(model_dir), device="cpu")
    outputs = pipe(texts, batch_size=len(texts), truncation=True, max_length=32)
    return [(out["label"], out["score"]) for out in outputs]


def test_onnx_gives_torch_labels_and_scores(exported: Path) -> None:
    expected = torch_predictions(exported, TEXTS)
    assert len({label for label, _ in expected}) == 2, "the stand-in model must say both"
    onnx = OnnxClassifier(exported, threads=1, file=export.FP32_FILE)
    batched = onnx(TEXTS)
    one_by_one = [onnx([text])[0] for text in TEXTS]
    for predictions in (batched, one_by_one):
        assert [p.label for p in predictions] == [label for label, _ in expected]
        assert [p.score for p in predictions] == pytest.approx(
            [score for _, score in expected], abs=1e-4
        )


def test_served_file_prefers_int8(exported: Path) -> None:
    assert OnnxClassifier(exported, threads=1).file == export.INT8_FILE
    assert export.runtime_files(exported, export.INT8_FILE)["onnx"] == [
        "config.json",
        "model.int8.onnx",
        "tokenizer.json",
        "tokenizer_config.json",
    ]


def test_agreement_is_measured_for_each_variant(exported: Path) -> None:
    labels = [int(label == "POSITIVE") for label, _ in torch_predictions(exported, TEXTS)]
    figures = agreement.measure(exported, TEXTS[1:], TEXTS[:1], labels[1:], labels[:1])
    assert set(figures) == {"fp32", "int8"}
    assert figures["fp32"]["held_out_tweets"] == {"n": 4, "agree": 4, "agreement": 1.0}
    assert figures["fp32"]["canaries"] == {"n": 1, "agree": 1}
    assert agreement.within_tolerance(figures["fp32"])


def test_version_id_follows_the_trained_model() -> None:
    assert export.version_id("trained-a") == export.version_id("trained-a")
    assert export.version_id("trained-a") != export.version_id("trained-b")


def test_int8_keeps_each_layers_ffn_output_in_float(exported: Path) -> None:
    assert export.ffn_output_matmuls(exported / export.FP32_FILE) == [
        "/bert/encoder/layer.0/output/dense/MatMul",
        "/bert/encoder/layer.1/output/dense/MatMul",
    ]
