from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from mlopsdeploy.deployment.control.appspec import (
    SPEC_NAME,
    AppSpecError,
    jsonpath_value,
    secret_values,
)
from mlopsdeploy.deployment.control.appspec_load import load_app_spec

REPO_ROOT = Path(__file__).resolve().parents[5]
EXAMPLE = REPO_ROOT / "examples" / "gradio-app"

GOOD = """
[install]
requirements = "requirements.txt"

[start]
command = "python app.py --port {port} --host {host}"

[model]
env = "MODEL_DIR"

[secrets]
names = ["HF_TOKEN", "OTHER_KEY"]

[env]
API_URL = "{api_model}"
FIXED = "yes"

[readiness]
url = "/health"

[[checks]]
name = "api label"
http = "/api/sentiment"
json = {texts = ["I am so happy today!"]}
jsonpath = "$.results[0].label"
equals = "POSITIVE"
"""


def app_dir(tmp_path: Path, spec: str, requirements: str = "gradio\n") -> Path:
    (tmp_path / "app.py").write_text("print('hi')\n")
    (tmp_path / "requirements.txt").write_text(requirements)
    (tmp_path / SPEC_NAME).write_text(spec)
    return tmp_path


def refusal(tmp_path: Path, spec: str, requirements: str = "gradio\n") -> str:
    with pytest.raises(AppSpecError) as error:
        load_app_spec(app_dir(tmp_path, spec, requirements))
    message = str(error.value)
    assert str(tmp_path / SPEC_NAME) in message  # every error names the file
    return message


def test_an_app_without_a_spec_is_the_bundled_app() -> None:
    spec = load_app_spec(REPO_ROOT / "app")
    assert spec.bundled and spec.notify and spec.ready_url == "/readyz"


def test_the_example_app_spec_checks_its_gradio_labels() -> None:
    spec = load_app_spec(EXAMPLE)
    assert not spec.bundled and not spec.notify
    assert spec.requirements == ("gradio", "transformers", "torch", "huggingface_hub")
    assert [(c.kind, c.target, c.expect, c.value) for c in spec.checks] == [
        ("gradio", "/predict", "label", "POSITIVE"),
        ("gradio", "/predict", "label", "NEGATIVE"),
    ]
    start = spec.exec_start("/b/venv", "/b/current/app", "0.0.0.0", 8010)
    assert start == "/b/venv/bin/python /b/current/app/_mlopsdeploy_launch.py app:demo 0.0.0.0 8010"


def test_command_environment_and_placeholders(tmp_path: Path) -> None:
    spec = load_app_spec(app_dir(tmp_path, GOOD))
    start = spec.exec_start("/b/venv", "/b/current/app", "127.0.0.1", 8001)
    assert start == "/b/venv/bin/python /b/current/app/app.py --port 8001 --host 127.0.0.1"
    env = spec.environment("127.0.0.1", 8001, "/b/current/model", "http://10.0.0.1:9000")
    assert env["MODEL_DIR"] == "/b/current/model"
    assert env["API_URL"] == "http://10.0.0.1:9000" and env["FIXED"] == "yes"
    assert env["GRADIO_SERVER_PORT"] == "8001"
    # An unset host setting leaves its variable out instead of setting it empty.
    assert "API_URL" not in spec.environment("127.0.0.1", 8001, "/m", None)


@pytest.mark.parametrize(
    ("change", "names"),
    [
        (lambda s: s.replace("[start]\ncommand", "[start]\n#command"), "start"),
        (lambda s: s + "\nport = 1\n", "checks[0] (api label).port"),
        (lambda s: s.replace("[model]\nenv", "[model]\ndir"), "model.dir"),
        (lambda s: s.replace('jsonpath = "$.results[0].label"\n', ""), "checks[0] (api label)"),
        (lambda s: s.replace('equals = "POSITIVE"\n', ""), "checks[0] (api label).equals"),
        (lambda s: s.replace("{host}", "{hostname}"), "start.command"),
        (lambda s: s.replace("[readiness]", "[ready]"), "ready"),
        (lambda s: s.replace("[model]", "timeout = -1\n[model]"), "start.timeout"),
    ],
)
def test_bad_spec_is_refused_naming_the_key(tmp_path: Path, change, names: str) -> None:
    assert f": {names}: " in refusal(tmp_path, change(GOOD))


def test_a_spec_without_checks_is_refused_unless_200_is_declared_enough(tmp_path: Path) -> None:
    no_checks = GOOD.split("[[checks]]")[0]
    assert "checks: no checks" in refusal(tmp_path, no_checks)
    spec = load_app_spec(
        app_dir(tmp_path, no_checks.replace("[readiness]", "[readiness]\nurl_alone = true"))
    )
    assert spec.url_alone and spec.checks == ()


@pytest.mark.parametrize(
    ("requirements", "why"),
    [
        ("gradio==1.0\n", "the control machine has gradio 6."),
        ("surely-not-installed-pkg\n", "surely-not-installed-pkg is not installed"),
        ("-e .\n", "not supported"),
        ("gradio>=>1\n", "is not a requirement"),
    ],
)
def test_requirements_that_do_not_resolve_are_refused(
    tmp_path: Path, requirements: str, why: str
) -> None:
    message = refusal(tmp_path, GOOD, requirements)
    assert "install.requirements: requirements.txt:" in message and why in message


def test_secrets_besides_the_token_come_from_the_environment(tmp_path: Path) -> None:
    spec = load_app_spec(app_dir(tmp_path, GOOD))
    assert secret_values(spec, {"OTHER_KEY": "s3cret"}) == (("OTHER_KEY", "s3cret"),)
    with pytest.raises(AppSpecError, match=r"secrets\.names: OTHER_KEY is not set"):
        secret_values(spec, {})


def test_a_missing_requirements_file_is_named(tmp_path: Path) -> None:
    shutil.rmtree(tmp_path)
    tmp_path.mkdir()
    (tmp_path / SPEC_NAME).write_text(GOOD)
    with pytest.raises(AppSpecError, match=r"install.requirements: .*requirements.txt does not"):
        load_app_spec(tmp_path)


def test_jsonpath_reads_keys_indexes_and_quoted_keys() -> None:
    document = {"results": [{"label": "POSITIVE", "a b": 1}]}
    assert jsonpath_value(document, "$.results[0].label") == "POSITIVE"
    assert jsonpath_value(document, "$.results[0]['a b']") == 1
    with pytest.raises(KeyError):
        jsonpath_value(document, "$.nothing")
