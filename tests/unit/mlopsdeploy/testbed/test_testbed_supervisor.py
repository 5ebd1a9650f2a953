"""The supervisor boots again after a guest reboot (exit 133) and only then.

A stand-in for systemd-nspawn plays the guest: no root or container needed.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

from mlopsdeploy.testbed.processes import ProcessId
from mlopsdeploy.testbed.supervisor import supervise

#: Exits 133 ("reboot") on its first two starts, then 0 ("power-off").
REBOOTS_TWICE = """
import sys
from pathlib import Path
runs = Path(sys.argv[1])
count = len(runs.read_text()) if runs.exists() else 0
runs.write_text("x" * (count + 1))
sys.exit(133 if count < 2 else 0)
"""

#: Runs until SIGTERM, then exits 133 as if rebooting, to prove a stop is never restarted.
RUNS_UNTIL_TERM = """
import signal, sys, time
from pathlib import Path
signal.signal(signal.SIGTERM, lambda *_: (Path(sys.argv[1]).write_text("term"), sys.exit(133)))
Path(sys.argv[1]).write_text("ready")
while True:
    time.sleep(1)
"""


def test_reboots_are_restarted_and_power_off_ends(tmp_path: Path) -> None:
    guest = [sys.executable, "-c", REBOOTS_TWICE, str(tmp_path / "runs")]
    assert supervise(tmp_path, guest) == 0
    assert (tmp_path / "runs").read_text() == "xxx"
    assert (tmp_path / "boots").read_text().strip() == "3"
    assert (tmp_path / "exit-status").read_text().strip() == "0"
    assert not (tmp_path / "nspawn.pid").exists()


def test_sigterm_stops_the_guest_without_restarting_it(tmp_path: Path) -> None:
    guest = [sys.executable, "-c", RUNS_UNTIL_TERM, str(tmp_path / "signal")]
    supervisor = subprocess.Popen(
        [sys.executable, "-m", "mlopsdeploy.testbed.supervisor", str(tmp_path), "--", *guest]
    )
    try:
        deadline = time.monotonic() + 30
        while not (tmp_path / "signal").exists():
            assert time.monotonic() < deadline, "guest never started"
        guest_pid = ProcessId.read(tmp_path / "nspawn.pid")
        assert guest_pid is not None and guest_pid.alive()
        supervisor.send_signal(signal.SIGTERM)
        assert supervisor.wait(timeout=30) == 133
    finally:
        supervisor.kill()
        supervisor.wait()
    assert (tmp_path / "signal").read_text() == "term"
    assert (tmp_path / "boots").read_text().strip() == "1"
    assert not guest_pid.alive()
