"""The one shape of every failure a user should hear about, whichever product it comes from."""

from __future__ import annotations


class AppError(Exception):
    """A failure to report: `str()` is for people, `kind` for programs and the `app_errors`
    metric, `status` for the HTTP answer. The JSON API and the UI both show exactly this."""

    kind: str = "error"
    status: int = 500
