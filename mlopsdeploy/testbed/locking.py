"""The machine lock around lifecycle methods, so two processes never boot or wipe one machine."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from functools import wraps
from typing import Concatenate, ParamSpec, Protocol, TypeVar

P = ParamSpec("P")
R = TypeVar("R")


class Lockable(Protocol):
    def _exclusive(self) -> AbstractContextManager[None]: ...


L = TypeVar("L", bound=Lockable)


def exclusive(
    method: Callable[Concatenate[L, P], R],
) -> Callable[Concatenate[L, P], R]:
    """Run a lifecycle method under the machine's lock (see State.machine_lock)."""

    @wraps(method)
    def locked(self: L, *args: P.args, **kwargs: P.kwargs) -> R:
        with self._exclusive():
            return method(self, *args, **kwargs)

    return locked
