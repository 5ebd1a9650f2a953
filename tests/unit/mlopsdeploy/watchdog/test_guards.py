"""Guards: backoff, the hourly repair limit and the per-host lock across processes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from mlopsdeploy.watchdog.guards import ActionBudget, backoff_delay, host_lock


def test_backoff_doubles_up_to_the_cap() -> None:
    assert [backoff_delay(2, n, 20) for n in range(1, 6)] == [2, 4, 8, 16, 20]


def test_budget_counts_a_sliding_hour() -> None:
    budget = ActionBudget(limit=2, past=[0.0])
    assert budget.left(10.0) == 1
    budget.record(100.0)
    assert budget.left(200.0) == 0
    assert budget.left(3600.5) == 1
    assert budget.left(3700.5) == 2


def test_lock_is_exclusive_within_a_process(tmp_path: Path) -> None:
    lock = host_lock(tmp_path, "vm/1")
    with lock.hold() as first:
        with host_lock(tmp_path, "vm/1").hold() as second:
            assert (first, second) == (True, False)
        with host_lock(tmp_path, "vm-2").hold() as other_host:
            assert other_host
    with lock.hold() as again:
        assert again


HOLDER = """
import sys
from pathlib import Path
from mlopsdeploy.watchdog.guards import host_lock
with host_lock(Path(sys.argv[1]), "vm1").hold() as held:
    print(held, flush=True)
    sys.stdin.readline()
"""


def test_lock_held_by_another_process_is_seen_and_dies_with_it(tmp_path: Path) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(tmp_path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "True"
        with host_lock(tmp_path, "vm1").hold() as held:
            assert not held
    finally:
        holder.kill()
        holder.wait()
    with host_lock(tmp_path, "vm1").hold() as held:
        assert held
