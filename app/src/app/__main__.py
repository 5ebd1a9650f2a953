"""`python -m app`: serve the app with uvicorn until SIGTERM or SIGINT.

uvicorn turns either signal into a graceful shutdown (open requests finish, the model's worker
stops), then raises the signal again for the handler that was there before it. `exit_on_signal`
is that handler: the process ends with status 0, which is what a clean stop should report.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
from types import FrameType

import uvicorn

from app.config import Settings, parse_settings
from app.redaction import RedactingFilter
from app.systemd import Watchdog

GRACEFUL_SHUTDOWN_SECONDS = 10


def configure_logging(settings: Settings) -> None:
    """One stderr handler for everything (uvicorn included), with the token masked."""
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    token = settings.hf_token.get_secret_value() if settings.hf_token else None
    handler.addFilter(RedactingFilter(token))
    logging.basicConfig(level=settings.log_level.upper(), handlers=[handler], force=True)


def exit_on_signal(signum: int, frame: FrameType | None) -> None:
    """Stop now with status 0: after uvicorn's shutdown, or before it started serving."""
    logging.getLogger(__name__).info("Stopped by %s", signal.Signals(signum).name)
    raise SystemExit(0)


def main(argv: list[str] | None = None) -> int:
    settings = parse_settings(argv, os.environ)
    configure_logging(settings)
    signal.signal(signal.SIGTERM, exit_on_signal)
    signal.signal(signal.SIGINT, exit_on_signal)
    # Pinging starts before the slow imports so that start-up counts as alive (see app.systemd).
    watchdog = Watchdog.from_environment()
    if watchdog:
        watchdog.start()
    # Imported only now: gradio and transformers take seconds to import, and `--help` or a
    # mistyped flag should answer at once.
    from app.factory import create_app

    uvicorn.run(
        create_app(settings, watchdog),
        host=settings.host,
        port=settings.port,
        log_config=None,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
