"""The registry hands every machine its own index, also under concurrent allocation."""

from __future__ import annotations

import fcntl
import multiprocessing
from pathlib import Path
from typing import Any

import pytest

from mlopsdeploy.testbed.processes import ProcessId
from mlopsdeploy.testbed.state import LAST_INDEX, Record, State, free_index


def test_state_dir_follows_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("MLOPSDEPLOY_TESTBED_DIR", str(tmp_path))
    assert State.default().root == tmp_path
    assert State.default().machine_dir("a") == tmp_path / "machines" / "a"


def test_free_index_is_the_lowest_not_registered_nor_on_the_host() -> None:
    records = {n: Record(n, i, "img", None) for n, i in (("a", 1), ("b", 3))}
    assert free_index(records, set()) == 2
    assert free_index(records, {2}) == 4


def test_free_index_fails_when_every_slot_is_taken() -> None:
    with pytest.raises(RuntimeError, match="slots are in use"):
        free_index({}, set(range(1, LAST_INDEX + 1)))


def test_records_survive_a_round_trip(tmp_path: Path) -> None:
    registry = State(tmp_path).registry
    mine = Record("mine", 5, "abc", ProcessId.current())
    theirs = Record("theirs", 6, "abc", None)
    with registry.locked() as records:
        records.update(mine=mine, theirs=theirs)
    assert registry.snapshot() == {"mine": mine, "theirs": theirs}


def test_only_machines_of_dead_owners_are_stale() -> None:
    me = ProcessId.current()
    assert not Record("a", 1, "i", me).stale()
    assert Record("a", 1, "i", ProcessId(me.pid, me.start + 1)).stale()
    assert not Record("a", 1, "i", None).stale(), "user-managed machines are never stale"


def _allocate(root: str, name: str) -> None:
    with State(Path(root)).registry.locked() as records:
        records[name] = Record(name, free_index(records, set()), "img", None)


def test_concurrent_allocations_never_share_an_index(tmp_path: Path) -> None:
    context = multiprocessing.get_context("fork")
    workers = [context.Process(target=_allocate, args=(str(tmp_path), f"m{n}")) for n in range(8)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=60)
        assert worker.exitcode == 0
    indexes = [record.index for record in State(tmp_path).registry.snapshot().values()]
    assert sorted(indexes) == list(range(1, 9))


def _hold_machine_lock(root: str, name: str, held: Any, release: Any) -> None:
    with State(Path(root)).machine_lock(name):
        held.set()
        release.wait(30)


def test_machine_lock_is_exclusive_and_survives_its_file_being_deleted(tmp_path: Path) -> None:
    """The second holder waits; when destroy deletes the lock file meanwhile, the waiter ends
    up holding the *current* file, so a third process is still kept out."""
    context = multiprocessing.get_context("fork")
    events = [context.Event() for _ in range(4)]
    first_held, first_release, second_held, second_release = events
    args = (str(tmp_path), "m")
    first = context.Process(target=_hold_machine_lock, args=(*args, first_held, first_release))
    second = context.Process(target=_hold_machine_lock, args=(*args, second_held, second_release))
    try:
        first.start()
        assert first_held.wait(30)
        second.start()
        assert not second_held.wait(0.5), "the second process must wait for the lock"
        State(tmp_path).machine_lock_path("m").unlink()  # as destroy does while holding it
        first_release.set()
        assert second_held.wait(30)
        lock_file = State(tmp_path).machine_lock_path("m")
        with open(lock_file) as current, pytest.raises(BlockingIOError):
            fcntl.flock(current, fcntl.LOCK_EX | fcntl.LOCK_NB)
    finally:
        for event in events:
            event.set()
        for process in (first, second):
            process.join(timeout=30)
