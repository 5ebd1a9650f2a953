"""The command line: exit codes and messages a deploy script or CI log relies on."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlopsdeploy.model import build as build_module
from mlopsdeploy.model.__main__ import main
from mlopsdeploy.model.manifest import write_manifest


def test_verify_names_the_bad_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "model.safetensors").write_bytes(b"weights")
    write_manifest(tmp_path, "v1")
    assert main(["verify", str(tmp_path)]) == 0
    assert "intact (v1)" in capsys.readouterr().out
    (tmp_path / "model.safetensors").write_bytes(b"weightz")
    assert main(["verify", str(tmp_path)]) == 1
    assert "model.safetensors: modified" in capsys.readouterr().err


def test_gate_failure_exits_non_zero_with_the_reason(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    def failing_build(*args: object, **kwargs: object) -> None:
        raise build_module.GateFailed("model failed the gate:\n  held-out tweet accuracy 0.5")

    monkeypatch.setattr(build_module, "build", failing_build)
    monkeypatch.setattr(
        build_module, "plan", lambda settings: build_module.Plan(settings, {}, "t-test", "v-test")
    )
    assert main(["build", "--out", str(tmp_path / "out"), "--threads", "1"]) == 1
    assert "build failed: model failed the gate" in capsys.readouterr().err


def test_verify_for_a_runtime_accepts_a_dir_without_the_other_runtimes_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("config.json", "model.safetensors", "model.onnx"):
        (tmp_path / name).write_bytes(name.encode())
    runtimes = {
        "torch": ["config.json", "model.safetensors"],
        "onnx": ["config.json", "model.onnx"],
    }
    write_manifest(tmp_path, "v2", runtimes=runtimes)
    (tmp_path / "model.safetensors").unlink()
    assert main(["verify", "--runtime", "onnx", str(tmp_path)]) == 0
    assert main(["verify", str(tmp_path)]) == 1
    assert "model.safetensors: missing" in capsys.readouterr().err
