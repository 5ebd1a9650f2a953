"""Values interpolated into shell lines and unit files arrive as one intact word."""

from __future__ import annotations

from pathlib import Path

from mlopsdeploy.config import HostConfig
from mlopsdeploy.deployment.host_commands import unit_quote
from mlopsdeploy.deployment.operations.service import render_unit


def unit_unquote(word: str) -> str:
    """What systemd makes of one double-quoted word (escapes and ``%%``), for the checks."""
    assert word.startswith('"') and word.endswith('"')
    out, chars = [], iter(word[1:-1])
    for c in chars:
        if c == "\\":
            nxt = next(chars)
            out.append({"n": "\n"}.get(nxt, nxt))
        elif c == "%":
            assert next(chars) == "%", "a lone % is a systemd specifier"
            out.append("%")
        else:
            assert c != '"', "an unescaped quote ends the word"
            out.append(c)
    return "".join(out)


def test_unit_quote_survives_quotes_backslashes_percent_and_newlines() -> None:
    value = 'APP_API_MODEL=https://h/m?q=1%20x "quoted" back\\slash\nline'
    assert unit_unquote(unit_quote(value)) == value


def test_environment_values_in_the_unit_are_quoted() -> None:
    cfg = HostConfig(
        name="vm", address="a", own_key=Path("/k"), api_model='https://h/m?x=50%"; Y=1'
    )
    (line,) = [line for line in render_unit(cfg).splitlines() if "APP_API_MODEL" in line]
    assert unit_unquote(line.removeprefix("Environment=")) == f"APP_API_MODEL={cfg.api_model}"
