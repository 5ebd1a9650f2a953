"""The JSON API's contract: pydantic models of every request and answer, published as OpenAPI.

The request models say exactly what `app.validation` accepts, limits included, so a client
generator or schemathesis can tell a valid request from an invalid one without guessing: a body
the schema allows is classified, a body it forbids gets a 4xx. The bodies are still parsed by
`app.validation`, whose messages name the exact field at fault; these models describe them.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from app.validation import Limits

# One character that is not whitespace in Python's sense (`str.isspace`, what `str.strip` drops),
# written so that ECMA-262 and Python regexes read it alike: a text must hold at least one.
NOT_WHITESPACE = (
    "[^\\t-\\r\\x1c-\\x20\\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]"
)


class Prediction(BaseModel):
    label: str = Field(description="the model's label, e.g. POSITIVE or NEGATIVE")
    score: float = Field(ge=0, le=1, description="the model's confidence in the label")


class Predictions(BaseModel):
    results: list[Prediction] = Field(description="one prediction per text, in order")


class Generated(BaseModel):
    text: str = Field(description="the chat model's answer")


class Alive(BaseModel):
    status: Literal["alive"]


class Ready(BaseModel):
    status: Literal["ready"]
    model: str
    model_version: str | None
    ui: Literal["starting", "serving", "failed"] = Field(
        description="the UI at /: still being built (its requests wait), serving, or failed"
    )


class NotReady(BaseModel):
    status: Literal["not ready"]
    reason: str = Field(description="what failed: still loading, failed to load, a canary")
    model: str
    model_version: str | None


class ErrorBody(BaseModel):
    """Every failure: `error` is stable for programs (and the app_errors metric), `detail` is
    for people."""

    error: str
    detail: str


def text_rules(limits: Limits) -> Any:
    """What makes a string a text the model takes: at most `limits.max_text_chars`, not blank."""
    return Field(max_length=limits.max_text_chars, pattern=NOT_WHITESPACE)


def sentiment_request_schema(limits: Limits) -> dict[str, Any]:
    """`{"text": ...}` or `{"texts": [...]}`, never both (each model forbids the other key)."""

    class OneText(BaseModel):
        model_config = ConfigDict(json_schema_extra={"not": {"required": ["texts"]}})
        text: Annotated[str, text_rules(limits)]

    class ManyTexts(BaseModel):
        model_config = ConfigDict(json_schema_extra={"not": {"required": ["text"]}})
        texts: list[Annotated[str, text_rules(limits)]] = Field(
            min_length=1, max_length=limits.max_texts
        )

    return {"anyOf": [OneText.model_json_schema(), ManyTexts.model_json_schema()]}


def generate_request_schema(limits: Limits) -> dict[str, Any]:
    """`{"prompt": ...}`; no prompt (or null, or no body at all) asks for a positive thought."""

    class PromptRequest(BaseModel):
        prompt: Annotated[str, text_rules(limits)] | None = None

    return PromptRequest.model_json_schema()


def json_body(schema: dict[str, Any], *, required: bool) -> dict[str, Any]:
    """An OpenAPI `requestBody` for `schema` (for a route's `openapi_extra`)."""
    return {
        "requestBody": {
            "required": required,
            "content": {"application/json": {"schema": schema}},
        }
    }


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The documented error answers of a route, all of them an `ErrorBody`."""
    return {status: {"model": ErrorBody, "description": _MEANING[status]} for status in statuses}


_MEANING = {
    400: "the body is not readable: empty, not JSON, not UTF-8, too deeply nested",
    413: "the body is larger than every allowed text could make it",
    422: "the JSON does not match the request schema; `detail` names the field",
    502: "the Inference API refused the token, cannot be reached, or failed",
    503: "the model is not loaded yet, the Inference API is overloaded, or not configured",
    504: "the Inference API did not answer in time",
}
