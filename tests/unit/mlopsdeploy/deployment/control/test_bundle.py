from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from mlopsdeploy.deployment.control import bundle
from mlopsdeploy.deployment.control.bundle import build_release, manifest_canaries
from mlopsdeploy.deployment.control.probe import DEFAULT_CANARIES, Canary
from mlopsdeploy.deployment.results import REPO_ROOT
from mlopsdeploy.model.manifest import write_manifest


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cache")


def make_model(root: Path, weights: bytes) -> Path:
    root.mkdir()
    (root / "config.json").write_text('{"id2label": {"0": "NEGATIVE", "1": "POSITIVE"}}')
    (root / "model.safetensors").write_bytes(weights)
    canaries = [{"text": "Not bad at all.", "expected": "POSITIVE", "ok": True}]
    write_manifest(root, version="m-test", canaries=canaries)
    return root


def test_release_id_follows_content(tmp_path: Path, cache: Path) -> None:
    app = REPO_ROOT / "app"
    first = build_release(app, make_model(tmp_path / "a", b"weights"), cache)
    again = build_release(app, make_model(tmp_path / "b", b"weights"), cache)
    other = build_release(app, make_model(tmp_path / "c", b"other weights"), cache)
    assert first.id == again.id != other.id
    assert set(first.files) == {
        "app.whl",
        "model/config.json",
        "model/model.safetensors",
        "model/manifest.json",
    }
    assert first.model_version == "m-test"
    assert Canary("Not bad at all.", "POSITIVE") in first.canaries


def test_model_failing_its_manifest_is_refused_before_any_push(tmp_path: Path, cache: Path) -> None:
    model = make_model(tmp_path / "m", b"weights")
    (model / "model.safetensors").write_bytes(b"tampered")
    with pytest.raises(ValueError, match=r"model\.safetensors: modified"):
        build_release(REPO_ROOT / "app", model, cache)


def test_manifest_canaries_extend_the_apps_own() -> None:
    manifest = json.loads('{"canaries": [{"text": "I don\'t love this.", "expected": "NEGATIVE"}]}')
    canaries = manifest_canaries(manifest)
    assert canaries[: len(DEFAULT_CANARIES)] == DEFAULT_CANARIES
    assert canaries[-1] == Canary("I don't love this.", "NEGATIVE")
    assert manifest_canaries({}) == DEFAULT_CANARIES


def test_app_wheel_is_rebuilt_only_when_the_source_changes(tmp_path: Path, cache: Path) -> None:
    app = tmp_path / "app"
    shutil.copytree(REPO_ROOT / "app", app, ignore=shutil.ignore_patterns("__pycache__"))
    model = make_model(tmp_path / "m", b"w")
    first = build_release(app, model, cache)
    assert build_release(app, model, cache).files["app.whl"] == first.files["app.whl"]
    (app / "src" / "app" / "__init__.py").write_text('"""changed"""\n')
    assert build_release(app, model, cache).id != first.id


def test_a_model_with_an_onnx_export_ships_only_what_onnx_reads(
    tmp_path: Path, cache: Path
) -> None:
    model = tmp_path / "onnx-model"
    model.mkdir()
    for name in ("config.json", "tokenizer.json", "model.safetensors", "model.onnx"):
        (model / name).write_bytes(name.encode())
    onnx = ["config.json", "model.onnx", "tokenizer.json"]
    write_manifest(
        model, "m-onnx", runtimes={"torch": ["config.json", "model.safetensors"], "onnx": onnx}
    )
    bundle = build_release(REPO_ROOT / "app", model, cache)
    assert set(bundle.files) == {"app.whl", "model/manifest.json", *(f"model/{n}" for n in onnx)}
    assert bundle.requirements is not None
    assert "onnxruntime==1.32.*" in bundle.requirements
    assert not [line for line in bundle.requirements if line.startswith(("torch", "transformers"))]


def test_a_model_without_onnx_export_gets_the_torch_runtime(tmp_path: Path, cache: Path) -> None:
    bundle = build_release(REPO_ROOT / "app", make_model(tmp_path / "m", b"weights"), cache)
    assert bundle.requirements is not None
    assert {"torch==2.13.0", "transformers==5.23.*"} <= set(bundle.requirements)


def test_an_app_with_a_spec_ships_its_files_not_a_wheel(tmp_path: Path, cache: Path) -> None:
    app = tmp_path / "my-app"
    shutil.copytree(REPO_ROOT / "examples" / "gradio-app", app)
    (app / "__pycache__").mkdir(exist_ok=True)
    (app / "__pycache__" / "app.cpython-311.pyc").write_bytes(b"stale")
    model = make_model(tmp_path / "m", b"weights")
    bundle = build_release(app, model, cache)
    assert bundle.spec is not None and bundle.spec.checks[0].target == "/predict"
    assert {rel for rel in bundle.files if rel.startswith("app/")} == {
        "app/app.py",
        "app/requirements.txt",
        "app/mlopsdeploy.toml",
        "app/_mlopsdeploy_launch.py",
    }
    spec_file = app / "mlopsdeploy.toml"
    spec_file.write_text(spec_file.read_text().replace('"POSITIVE"', '"NEGATIVE"', 1))
    assert build_release(app, model, cache).id != bundle.id  # a changed check is a new release


def test_a_model_that_passed_is_not_hashed_again_until_a_file_changes(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    model = make_model(tmp_path / "m", b"weights")
    first = build_release(REPO_ROOT / "app", model, tmp_path / "cache")

    def hashed(model_dir: Path) -> list[str]:
        raise AssertionError("hashed the model again")

    monkeypatch.setattr(bundle, "verify", hashed)
    assert build_release(REPO_ROOT / "app", model, tmp_path / "cache").id == first.id
    monkeypatch.undo()
    # Tampered in place with the same size, and its mtime put back: still refused.
    weights = model / "model.safetensors"
    before = weights.stat()
    weights.write_bytes(b"WEIGHTS")
    os.utime(weights, ns=(before.st_atime_ns, before.st_mtime_ns))
    with pytest.raises(ValueError, match=r"model\.safetensors: modified"):
        build_release(REPO_ROOT / "app", model, tmp_path / "cache")
