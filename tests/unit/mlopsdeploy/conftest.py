"""Run pyinfra operations against fake facts: the commands an operation would send, no host.

Same idea as pyinfra's own operation tests: an operation is a generator over facts, so feeding
it facts and reading what it yields tests its decisions (especially "yield nothing when the
host is already right") without SSH.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import pytest
from pyinfra.api import StringCommand
from pyinfra.context import ctx_host


class FakeHost:
    """Answers ``get_fact`` from a mapping of fact class -> value (or callable of the kwargs)."""

    name = "fake-host"

    def __init__(self, facts: Mapping[type, Any]) -> None:
        self.facts = facts
        self.asked: list[tuple[type, dict[str, Any]]] = []

    def get_fact(self, cls: type, *args: Any, **kwargs: Any) -> Any:
        self.asked.append((cls, kwargs))
        value = self.facts[cls]
        return value(**kwargs) if callable(value) else value


RunOp = Callable[..., list[Any]]


@pytest.fixture
def run_op() -> RunOp:
    """``run_op(op, facts, **kwargs)`` -> the commands the operation yields (str or objects)."""

    def run(op: Any, facts: Mapping[type, Any], **kwargs: Any) -> list[Any]:
        with ctx_host.use(FakeHost(facts)):
            return [str(c) if isinstance(c, StringCommand) else c for c in op._inner(**kwargs)]

    return run


@pytest.fixture
def fake_host() -> Callable[[Mapping[type, Any]], Any]:
    """``with fake_host(facts) as host:`` makes ``pyinfra.host`` answer from ``facts``."""

    @contextmanager
    def use(facts: Mapping[type, Any]) -> Iterator[FakeHost]:
        host = FakeHost(facts)
        with ctx_host.use(host):
            yield host

    return use
