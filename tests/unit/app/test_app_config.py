"""Settings come from flags over environment variables over defaults; bad values stop start-up."""

from __future__ import annotations

import pytest
from app.config import DEFAULT_MODEL, Settings, parse_settings


def test_defaults_without_flags_or_environment() -> None:
    settings = parse_settings([], {})
    assert settings == Settings()
    assert (settings.model, settings.host, settings.port) == (DEFAULT_MODEL, "127.0.0.1", 8000)
    assert settings.hf_token is None


def test_every_setting_has_an_environment_variable() -> None:
    environ = {
        "APP_MODEL": "/srv/model",
        "APP_HOST": "0.0.0.0",
        "APP_PORT": "8010",
        "APP_API_MODEL": "http://10.213.0.1:8088",
        "APP_API_TIMEOUT": "2.5",
        "APP_API_MAX_TOKENS": "12",
        "APP_MAX_TEXT_CHARS": "100",
        "APP_MAX_TEXTS": "3",
        "APP_BATCH_MAX_SIZE": "1",
        "APP_BATCH_WAIT_MS": "0",
        "APP_TORCH_THREADS": "2",
        "APP_LOG_LEVEL": "debug",
    }
    settings = parse_settings([], environ)
    assert settings == Settings(
        model="/srv/model",
        host="0.0.0.0",
        port=8010,
        api_model="http://10.213.0.1:8088",
        api_timeout=2.5,
        api_max_tokens=12,
        max_text_chars=100,
        max_texts=3,
        batch_max_size=1,
        batch_wait_ms=0.0,
        torch_threads=2,
        log_level="debug",
    )


def test_flags_win_over_environment() -> None:
    settings = parse_settings(
        ["--model", "/flag/model", "--port", "9000"], {"APP_MODEL": "/env/model", "APP_PORT": "1"}
    )
    assert (settings.model, settings.port) == ("/flag/model", 9000)


def test_token_comes_from_hf_token_and_is_never_shown(api_token: str) -> None:
    settings = parse_settings([], {"HF_TOKEN": api_token})
    assert settings.hf_token is not None
    assert settings.hf_token.get_secret_value() == api_token
    assert api_token not in repr(settings)
    assert api_token not in str(settings.hf_token)


def test_there_is_no_token_flag(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        parse_settings(["--hf-token", "x"], {})
    assert exit_info.value.code == 2
    assert "unrecognized arguments" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "environ", "message"),
    [
        ([], {"APP_PORT": "eighty"}, "APP_PORT='eighty' is not a valid int"),
        ([], {"APP_API_TIMEOUT": "0"}, "api_timeout must be positive"),
        (["--port", "70000"], {}, "port must be at most 65535"),
        (["--max-texts", "-1"], {}, "max_texts must be positive"),
        (["--batch-max-size", "0"], {}, "batch_max_size must be at least 1"),
        (["--log-level", "loud"], {}, "log_level must be"),
    ],
)
def test_invalid_settings_stop_with_a_message(
    argv: list[str], environ: dict[str, str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        parse_settings(argv, environ)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_runtime_comes_from_the_flag_over_the_environment() -> None:
    assert parse_settings([], {}).runtime == "auto"
    assert parse_settings([], {"APP_RUNTIME": "torch"}).runtime == "torch"
    assert parse_settings(["--runtime", "onnx"], {"APP_RUNTIME": "torch"}).runtime == "onnx"


def test_an_unknown_runtime_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        parse_settings(["--runtime", "tensorflow"], {})
    assert exit_info.value.code == 2
    assert "runtime must be auto, onnx or torch" in capsys.readouterr().err
