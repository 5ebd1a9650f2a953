"""The published contract holds: schemathesis drives every route from the app's /openapi.json.

It runs in-process (ASGI) against an app on the trained model with small limits and the Inference
API stand-in, every phase and default check: no 5xx, every status and body as documented,
schema-valid requests accepted, invalid ones refused with a 4xx, undeclared methods answered with
405 and `Allow`.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import schemathesis
from app.config import Settings
from app.factory import create_app
from app.schemas import NOT_WHITESPACE
from app.validation import Limits
from pydantic import SecretStr
from schemathesis.python.asgi import shutdown_lifespans

from mlopsdeploy.testing.contract import contract_failures
from mlopsdeploy.testing.standin import StandIn


def test_every_route_keeps_its_contract(
    sentiment_model_dir: Path, small_limits: Limits, api_token: str
) -> None:
    # The trained model, so /readyz is a 200 and any 5xx is a failure.
    with StandIn(token=api_token) as standin:
        app = create_app(
            Settings(
                model=str(sentiment_model_dir),
                max_text_chars=small_limits.max_text_chars,
                max_texts=small_limits.max_texts,
                api_model=standin.url,
                hf_token=SecretStr(api_token),
            )
        )
        # schemathesis starts the app's lifespan (the model load) with its first request.
        schema = schemathesis.openapi.from_asgi("/openapi.json", app)
        schema.config.generation.update(max_examples=60)
        try:
            assert contract_failures(schema) == []
        finally:
            shutdown_lifespans()


def test_not_whitespace_is_what_python_strips() -> None:
    """The schema's "not blank" is exactly `str.strip`'s, or the schema and the app disagree."""
    whitespace = {chr(code) for code in range(sys.maxunicode + 1) if chr(code).isspace()}
    pattern = re.compile(NOT_WHITESPACE)
    assert {char for char in whitespace if pattern.fullmatch(char)} == set()
    assert all(
        pattern.fullmatch(chr(code)) for code in range(0x3100) if chr(code) not in whitespace
    )
