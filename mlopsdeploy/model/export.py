"""ONNX files of a saved model directory, for serving without torch.

Runs after training, on the saved directory (the same fp16-stored weights `pipeline()` loads),
so a model that was trained once can be exported again whenever this code or the ONNX
toolchain changes, without re-training. The export uses torch's TorchScript exporter
(`dynamo=False`), opset 17, with batch and sequence dynamic; the int8 variant is onnxruntime's
dynamic quantization of it. Whether the int8 file may ship is decided by `agreement`, not here.
"""

from __future__ import annotations

import hashlib
import json
from importlib import metadata
from pathlib import Path

from mlopsdeploy.model.recipe import NAME, _code_only

FP32_FILE = "model.onnx"
INT8_FILE = "model.int8.onnx"
OPSET = 17
#: Files the ONNX runtime reads besides the .onnx file itself (labels, lengths, tokenizer).
ONNX_SHARED_FILES = ("config.json", "tokenizer.json", "tokenizer_config.json")
#: Libraries whose versions change the exported bytes or the agreement measured.
TOOLCHAIN = ("torch", "onnx", "onnxruntime", "tokenizers")


def _export_code() -> list[Path]:
    """Code that decides the exported files and whether int8 ships (the app's ONNX classifier
    scores the variants)."""
    import app.onnx_classifier

    here = Path(__file__).parent
    return [here / "export.py", here / "agreement.py", Path(app.onnx_classifier.__file__)]


def export_fingerprint() -> dict[str, object]:
    """What the exported files depend on beyond the trained weights (docstrings excluded)."""
    digest = hashlib.sha256()
    for path in _export_code():
        digest.update(_code_only(path.read_text("utf-8")).encode())
    return {
        "opset": OPSET,
        "packages": {name: metadata.version(name) for name in TOOLCHAIN},
        "code": digest.hexdigest(),
    }


def version_id(trained_version: str) -> str:
    """`minilm-sentiment-<12 hex>` of the shipped artifact: trained weights plus their export.

    The trained model keeps its own id (its cache key), so changing the export makes a new
    version without re-training.
    """
    fingerprint = {"trained": trained_version, "export": export_fingerprint()}
    canonical = json.dumps(fingerprint, sort_keys=True).encode()
    return f"{NAME}-{hashlib.sha256(canonical).hexdigest()[:12]}"


def export_fp32(model_dir: Path) -> Path:
    """Write `model_dir/model.onnx` from the saved weights; inputs int64, logits float32."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    model = AutoModelForSequenceClassification.from_pretrained(model_dir, dtype=torch.float32)
    model.eval()
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    sample = tokenizer(
        ["an example", "a longer example sentence"], padding=True, return_tensors="pt"
    )
    names = [name for name in ("input_ids", "attention_mask", "token_type_ids") if name in sample]
    axes = {name: {0: "batch", 1: "sequence"} for name in names}
    dest = model_dir / FP32_FILE
    with torch.no_grad():
        torch.onnx.export(
            model,
            tuple(sample[name] for name in names),
            str(dest),
            input_names=names,
            output_names=["logits"],
            dynamic_axes={**axes, "logits": {0: "batch"}},
            opset_version=OPSET,
            dynamo=False,
        )
    return dest


def ffn_output_matmuls(onnx_path: Path) -> list[str]:
    """The MatMuls that project each layer's GELU output back to the hidden size.

    Their inputs have the widest range of the network, so quantizing them to 8 bits flips the
    most labels (measured on the held-out tweets: 99.1 % agreement with them, 99.6 % without).
    BERT names them `.../output/dense/MatMul`, DistilBERT `.../ffn/lin2/MatMul`.
    """
    import onnx

    graph = onnx.load(str(onnx_path), load_external_data=False).graph
    return [
        node.name
        for node in graph.node
        if node.op_type == "MatMul"
        and (
            ("/output/dense/" in node.name and "/attention/" not in node.name)
            or "/ffn/lin2/" in node.name
        )
    ]


def quantize_int8(model_dir: Path) -> Path:
    """Write `model_dir/model.int8.onnx`: int8 weights per output channel, activations
    quantized at run time, the FFN output projections left in float32."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    source, dest = model_dir / FP32_FILE, model_dir / INT8_FILE
    quantize_dynamic(
        source,
        dest,
        weight_type=QuantType.QInt8,
        per_channel=True,
        nodes_to_exclude=ffn_output_matmuls(source),
    )
    return dest


def runtime_files(model_dir: Path, serves: str) -> dict[str, list[str]]:
    """Which files each runtime needs: torch everything but ONNX, onnx the served file + shared."""
    names = sorted(p.name for p in model_dir.iterdir() if p.is_file())
    return {
        "torch": [name for name in names if not name.endswith(".onnx")],
        "onnx": sorted([*ONNX_SHARED_FILES, serves]),
    }
