"""The README's troubleshooting table names only messages a test makes the tool print.

Each message's fixed parts (the text between `<placeholders>`) must appear in a test other than
this one: those tests produce the message with the real code and assert its text, so the table
cannot drift from what a user sees.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
MIN_FRAGMENT = 8  # shorter fixed parts (": ~", " MB free") say too little to look for


def troubleshooting_messages() -> list[str]:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Troubleshooting", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"^\| `([^`]+)` \|", section, flags=re.MULTILINE)


def fragments(message: str) -> list[str]:
    """The fixed parts of `message`, without the punctuation that joins them to placeholders."""
    parts = (part.strip(" .,;:()…") for part in re.split(r"<[^>]+>", message))
    return [part for part in parts if len(part) >= MIN_FRAGMENT]


def texts(directory: str, *, skip: Path | None = None) -> str:
    return "\n".join(
        path.read_text() for path in sorted((ROOT / directory).rglob("*.py")) if path != skip
    )


# Long messages are spelled over several string literals: compare without the seams.
TESTS = re.sub(r'"\s*\n\s*f?"', "", texts("tests", skip=Path(__file__).resolve()))


def test_the_table_covers_every_failure_a_student_meets() -> None:
    messages = " ".join(troubleshooting_messages())
    for cause in ("host key", "default key", "disk space", "already taken", "Python", "gate"):
        assert cause in messages


@pytest.mark.parametrize("message", troubleshooting_messages())
def test_each_message_is_asserted_by_a_test(message: str) -> None:
    for fragment in fragments(message):
        assert fragment in TESTS, f"no test asserts {fragment!r}"
