"""``python -m mlopsdeploy.testing``: serve the Inference API stand-in from another process.

The demo and the resilience suite run it beside a test VM; the token comes from
``STANDIN_TOKEN`` or ``--token-file``, never from argv, so it never shows in ``ps``.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from pathlib import Path
from types import FrameType

from mlopsdeploy.testing.standin import MODES, StandIn


def read_token(token_file: Path | None, environ: dict[str, str]) -> str | None:
    """The token from `token_file` when given, else from STANDIN_TOKEN (never from argv)."""
    if token_file is not None:
        return token_file.read_text().strip() or None
    return environ.get("STANDIN_TOKEN") or None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m mlopsdeploy.testing",
        description="Serve a stand-in for the Hugging Face Inference API until SIGTERM/SIGINT. "
        "The bearer token is read from $STANDIN_TOKEN or --token-file.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8088)
    parser.add_argument(
        "--control-port", type=int, default=None, help="listener that survives down"
    )
    parser.add_argument("--token-file", type=Path, default=None)
    parser.add_argument("--mode", choices=MODES, default="ok")
    parser.add_argument("--slow-seconds", type=float, default=30.0)
    args = parser.parse_args(argv)
    token = read_token(args.token_file, dict(os.environ))
    if token is None:
        parser.error("no token: set STANDIN_TOKEN or pass --token-file")
    stop = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    standin = StandIn(
        args.host,
        args.port,
        token,
        slow_seconds=args.slow_seconds,
        control_port=args.control_port,
    )
    with standin:
        standin.mode = args.mode
        print(
            f"standin listening url={standin.url} control_url={standin.control_url or ''}",
            flush=True,
        )
        stop.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
