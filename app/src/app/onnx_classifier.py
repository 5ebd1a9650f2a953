"""The local product on ONNX Runtime: `tokenizers` + `onnxruntime` + numpy, no torch.

Importing torch and building a transformers pipeline takes seconds and hundreds of MB; serving a
small exported classifier needs neither. This module reproduces what the pipeline does for
text classification (tokenize with truncation, pad to the longest text of the batch, one
forward pass, softmax, label of the highest score) so both runtimes give the same answers.
Nothing here may import torch or transformers: tests check `sys.modules` of a started app.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from app.classifier import Prediction

#: Preferred first: the int8 file exists only when its labels matched torch's at build time.
ONNX_FILES = ("model.int8.onnx", "model.onnx")


def onnx_file(model: str) -> Path | None:
    """The ONNX file to serve from the model directory `model`, if it carries one."""
    directory = Path(model)
    return next((directory / name for name in ONNX_FILES if (directory / name).is_file()), None)


class OnnxClassifier:
    """A batch classifier over the ONNX export in `model_dir`, on `threads` CPU threads.

    + file: which ONNX file to load (the build scores each variant); default `onnx_file()`
    """

    def __init__(self, model_dir: Path, threads: int, file: str | None = None) -> None:
        import numpy as np
        import onnxruntime
        from tokenizers import Tokenizer

        path = model_dir / file if file else onnx_file(str(model_dir))
        if path is None or not path.is_file():
            raise FileNotFoundError(f"no ONNX file ({' or '.join(ONNX_FILES)}) in {model_dir}")
        config = json.loads((model_dir / "config.json").read_text(encoding="utf-8"))
        id2label = config.get("id2label") or {}
        self.labels = [str(id2label[str(index)]) for index in range(len(id2label))]
        tokenizer_config = _json(model_dir / "tokenizer_config.json")
        # Like the torch path (app.classifier): never longer than the position embeddings.
        positions = config.get("max_position_embeddings") or 512
        max_length = min(int(tokenizer_config.get("model_max_length", positions)), positions)
        self._tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        self._tokenizer.enable_truncation(max_length)
        pad_token = str(tokenizer_config.get("pad_token") or "[PAD]")
        pad_id = self._tokenizer.token_to_id(pad_token)
        self._tokenizer.enable_padding(pad_id=pad_id or 0, pad_token=pad_token)
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        self._session = onnxruntime.InferenceSession(
            str(path), options, providers=["CPUExecutionProvider"]
        )
        self._inputs = [entry.name for entry in self._session.get_inputs()]
        self._np = np
        self.file = path.name

    def __call__(self, texts: list[str]) -> list[Prediction]:
        np = self._np
        encodings = self._tokenizer.encode_batch(texts)
        columns = {
            "input_ids": [e.ids for e in encodings],
            "attention_mask": [e.attention_mask for e in encodings],
            "token_type_ids": [e.type_ids for e in encodings],
        }
        feed = {name: np.asarray(columns[name], dtype=np.int64) for name in self._inputs}
        logits = self._session.run(None, feed)[0].astype(np.float32)
        shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
        scores = shifted / shifted.sum(axis=-1, keepdims=True)
        best = scores.argmax(axis=-1)
        return [
            Prediction(self.labels[int(index)], float(row[index]))
            for index, row in zip(best, scores, strict=True)
        ]


def _json(path: Path) -> dict[str, Any]:
    """An optional JSON object file; {} when absent."""
    data = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    return data if isinstance(data, dict) else {}
