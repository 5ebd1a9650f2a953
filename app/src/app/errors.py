"""The one shape of every failure a user should hear about, whichever product it comes from."""

from __future__ import annotations


class AppError(Exception):
    """A failure to report: `str()` is for people, `kind` for programs and the `app_errors`
    metric, `status` for the HTTP answer. The JSON API and the UI both show exactly this."""

    kind: str = "error"
    status: int = 500

    @property
    def headers(self) -> dict[str, str]:
        """HTTP headers the answer must carry besides the body (such as `Allow` on a 405)."""
        return {}


class MethodNotAllowed(AppError):
    """A route exists at this path, but not for this method: 405, with the methods it takes."""

    kind = "method_not_allowed"
    status = 405

    def __init__(self, method: str, path: str, allowed: list[str]) -> None:
        super().__init__(f"{path} does not take {method}; use {' or '.join(allowed)}")
        self.allowed = allowed

    @property
    def headers(self) -> dict[str, str]:
        return {"Allow": ", ".join(self.allowed)}
