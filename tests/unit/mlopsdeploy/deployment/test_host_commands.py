"""Shell lines and unit text built for the host: quoting intact, the host lock exclusive."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from mlopsdeploy.config import HostConfig
from mlopsdeploy.deployment.host_commands import hold_host_lock, under_host_lock, unit_quote
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


def holder(base: Path, owner: str, wait: int = 0) -> subprocess.Popen[str]:
    """The lock-holding shell as the deploy's SSH channel runs it, here on the local machine."""
    return subprocess.Popen(
        ["sh", "-c", hold_host_lock(str(base), "user", owner, wait)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )


def answer(process: subprocess.Popen[str]) -> str:
    assert process.stdout is not None
    return process.stdout.readline().strip()


def test_second_run_is_refused_naming_the_holder_and_since_when(tmp_path: Path) -> None:
    base = tmp_path / "deploy root"
    first = holder(base, "deploy A on ctl-1")
    assert answer(first) == "locked"
    second = holder(base, "deploy B on ctl-2")
    assert re.fullmatch(
        r"busy deploy A on ctl-1 since \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", answer(second)
    )
    assert second.wait() == 75
    first.communicate("")  # the channel closes: the holder ends and the lock goes with it
    third = holder(base, "deploy C")
    assert answer(third) == "locked"
    third.communicate("")


def test_a_killed_holder_leaves_no_lock(tmp_path: Path) -> None:
    first = holder(tmp_path, "deploy A")
    assert answer(first) == "locked"
    first.kill()  # SIGKILL, as when the deploy's connection dies with it
    first.wait()
    second = holder(tmp_path, "deploy B")
    assert answer(second) == "locked"
    second.communicate("")


def test_a_command_under_the_lock_waits_for_no_one_when_free(tmp_path: Path) -> None:
    done = subprocess.run(
        ["sh", "-c", under_host_lock(str(tmp_path), "echo restarted", 0)],
        capture_output=True,
        text=True,
    )
    assert done.stdout == "restarted\n"
    first = holder(tmp_path, "deploy A")
    assert answer(first) == "locked"
    busy = subprocess.run(["sh", "-c", under_host_lock(str(tmp_path), "echo restarted", 0)])
    assert busy.returncode != 0
    first.communicate("")
