"""Every registered machine, and the removal of those whose owning process is gone."""

from __future__ import annotations

from mlopsdeploy.testbed.machine import TestVM
from mlopsdeploy.testbed.state import State


def machines(state: State | None = None) -> list[TestVM]:
    """Handles on every registered machine, by name."""
    state = state or State.default()
    handles = []
    for name, record in sorted(state.registry.snapshot().items()):
        vm = TestVM(name, state=state)
        vm._record = record  # one consistent snapshot, even while others create and destroy
        handles.append(vm)
    return handles


def cleanup_stale(prefix: str = "", state: State | None = None) -> list[str]:
    """Destroy machines named `prefix...` whose owning process is gone; return their names.

    A test run killed hard (SIGKILL, a crashed xdist worker) cannot tear down its machines.
    Anyone can call this safely: machines whose owner still runs, and user-managed ones
    (created by the CLI), are never touched.
    """
    state = state or State.default()
    stale = [
        name
        for name, record in state.registry.snapshot().items()
        if name.startswith(prefix) and record.stale()
    ]
    for name in stale:
        TestVM(name, state=state).destroy()
    return stale
