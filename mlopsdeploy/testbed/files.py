"""Writing the small state files other processes poll (pid files, boot counter, registry)."""

from __future__ import annotations

from pathlib import Path


def write_atomically(path: Path, text: str) -> None:
    """Replace `path` with `text` in one rename, so a concurrent reader never sees it empty."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    tmp.replace(path)
