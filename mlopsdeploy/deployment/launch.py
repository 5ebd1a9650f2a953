"""Runs on the host: serve the object an app spec names (``module:attr``) on a host and port.

Shipped into a release beside the app's files (as ``app/_mlopsdeploy_launch.py``) when the spec
says ``start.app``; the unit runs it with the venv's Python. A Gradio ``Blocks``/``Interface``
is launched the way its author would (``demo.launch()``), anything else is served as an ASGI
app by uvicorn. Standard library only: the host's venv holds the app's dependencies, not ours.

Usage: ``python _mlopsdeploy_launch.py app:demo 0.0.0.0 8000``
"""

from __future__ import annotations

import importlib
import sys
from typing import Any


def load(path: str) -> Any:
    """The object at ``module:attr.attr``, imported from the app's directory."""
    module_name, _, attrs = path.partition(":")
    found: Any = importlib.import_module(module_name)
    for attr in attrs.split("."):
        found = getattr(found, attr)
    return found


def serve(app: Any, host: str, port: int) -> None:
    """Block serving ``app``: Gradio's own server for Gradio apps, uvicorn for ASGI apps."""
    if callable(getattr(app, "launch", None)):
        app.launch(server_name=host, server_port=port, share=False)
        return
    import uvicorn

    uvicorn.run(app, host=host, port=port)


def main(argv: list[str]) -> None:
    path, host, port = argv
    serve(load(path), host, int(port))


if __name__ == "__main__":
    main(sys.argv[1:])
