"""Settings of the service, from command-line flags over environment variables over defaults.

Every setting has an environment variable so that a systemd unit (or its EnvironmentFile) can
configure the service without a command line; flags win so a person can override one thing by hand.
The Hugging Face token is the exception: it is read from HF_TOKEN only, never from argv, where
any user of the machine could read it in the process list.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from pydantic import SecretStr

DEFAULT_MODEL = "distilbert-base-uncased-finetuned-sst-2-english"
DEFAULT_API_MODEL = "meta-llama/Llama-3.2-1B-Instruct"
#: auto: onnx for a model directory that carries an ONNX file, torch otherwise (Hub ids).
RUNTIMES = ("auto", "onnx", "torch")


@dataclass(frozen=True)
class Settings:
    """What the service needs to run; see docs/app.md for the matching environment variables."""

    model: str = DEFAULT_MODEL
    runtime: str = "auto"
    host: str = "127.0.0.1"
    port: int = 8000
    api_model: str = DEFAULT_API_MODEL
    hf_token: SecretStr | None = field(default=None, repr=False)
    api_timeout: float = 20.0
    api_max_tokens: int = 60
    max_text_chars: int = 2000
    max_texts: int = 64
    batch_max_size: int = 32
    batch_wait_ms: float = 4.0
    # One thread per forward pass: on a busy 2-core machine, 2 torch threads made one sentence
    # 5-9x slower (645-888 ms against 71-141 ms) as they fought other processes for the cores.
    torch_threads: int = 1
    log_level: str = "info"

    @property
    def max_body_bytes(self) -> int:
        """Largest request body worth parsing: every text at its longest, each char JSON-escaped."""
        return self.max_texts * self.max_text_chars * 6 + 4096


# (flag, environment variable, type, help); the Settings field is the flag without dashes.
_OPTIONS: tuple[tuple[str, str, type, str], ...] = (
    ("--model", "APP_MODEL", str, "sentiment model: Hub id or local directory"),
    ("--runtime", "APP_RUNTIME", str, "auto, onnx or torch (auto: onnx if the model dir has one)"),
    ("--host", "APP_HOST", str, "address to listen on"),
    ("--port", "APP_PORT", int, "port to listen on"),
    ("--api-model", "APP_API_MODEL", str, "Inference API chat model: Hub id or endpoint URL"),
    ("--api-timeout", "APP_API_TIMEOUT", float, "seconds to wait for the Inference API"),
    ("--api-max-tokens", "APP_API_MAX_TOKENS", int, "longest generated answer, in tokens"),
    ("--max-text-chars", "APP_MAX_TEXT_CHARS", int, "longest text accepted, in characters"),
    ("--max-texts", "APP_MAX_TEXTS", int, "most texts accepted in one request"),
    ("--batch-max-size", "APP_BATCH_MAX_SIZE", int, "most texts per forward pass (1: no batching)"),
    ("--batch-wait-ms", "APP_BATCH_WAIT_MS", float, "ms a batch waits for more texts under load"),
    ("--torch-threads", "APP_TORCH_THREADS", int, "CPU threads per forward pass (both runtimes)"),
    ("--log-level", "APP_LOG_LEVEL", str, "debug, info, warning or error"),
)

_POSITIVE = (
    "port",
    "api_timeout",
    "api_max_tokens",
    "max_text_chars",
    "max_texts",
    "torch_threads",
)


def parse_settings(argv: Sequence[str] | None, environ: Mapping[str, str]) -> Settings:
    """Settings from `argv` (flags) and `environ`; exits with status 2 and a message if invalid."""
    parser = argparse.ArgumentParser(
        prog="python -m app",
        description="Serve the sentiment app (JSON API, metrics and Gradio UI). Every flag can "
        "also be set by the environment variable shown; HF_TOKEN holds the Inference API token.",
    )
    defaults = Settings()
    for flag, env, kind, help_text in _OPTIONS:
        name = flag.removeprefix("--").replace("-", "_")
        parser.add_argument(
            flag,
            type=kind,
            default=None,
            help=f"{help_text} (env {env}, default {getattr(defaults, name)})",
        )
    args = parser.parse_args(argv)
    values: dict[str, object] = {}
    for flag, env, kind, _ in _OPTIONS:
        name = flag.removeprefix("--").replace("-", "_")
        value = getattr(args, name)
        if value is None and environ.get(env):
            try:
                value = kind(environ[env])
            except ValueError:
                parser.error(f"{env}={environ[env]!r} is not a valid {kind.__name__}")
        if value is not None:
            values[name] = value
    token = environ.get("HF_TOKEN")
    settings = Settings(**values, hf_token=SecretStr(token) if token else None)  # type: ignore[arg-type]
    problem = _problem(settings)
    if problem:
        parser.error(problem)
    return settings


def _problem(settings: Settings) -> str | None:
    for name in _POSITIVE:
        if getattr(settings, name) <= 0:
            return f"{name} must be positive"
    if settings.port > 65535:
        return "port must be at most 65535"
    if settings.batch_max_size < 1:
        return "batch_max_size must be at least 1"
    if settings.batch_wait_ms < 0:
        return "batch_wait_ms must not be negative"
    if settings.runtime not in RUNTIMES:
        return f"runtime must be {', '.join(RUNTIMES[:-1])} or {RUNTIMES[-1]}"
    if settings.log_level.lower() not in ("debug", "info", "warning", "error"):
        return "log_level must be debug, info, warning or error"
    return None
