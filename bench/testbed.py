"""Testbed figures: image build time and size, boot, wipe and reboot times to SSH.

    python bench/testbed.py [--runs 5] [--rebuild]

"To SSH" is until `TestVM.up()` (or the operation) has returned *and* a first SSH login with
the default key has run `true`: what a user waiting for the machine sees. Each figure is the
median of --runs runs (min and max beside it), also given as a multiple of one SSH login to a
running machine measured in the same run (the baseline). Needs root; uses machines named
bench-<pid>-<n>, destroyed at the end.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable

from mlopsdeploy.testbed import Image, TestVM, missing_requirements


def to_ssh(vm: TestVM, operation: Callable[[], object] | None = None) -> float:
    """Seconds for `operation` and then a first SSH command on the machine."""
    started = time.perf_counter()
    if operation is not None:
        operation()
    vm.run("true")
    return time.perf_counter() - started


def report(label: str, seconds: list[float]) -> float:
    median = statistics.median(seconds)
    print(f"{label:<34} median {median:6.2f} s   min {min(seconds):6.2f}   max {max(seconds):6.2f}")
    return median


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--rebuild", action="store_true", help="time a fresh image build")
    args = parser.parse_args()
    if missing := missing_requirements():
        print("cannot benchmark, missing: " + "; ".join(missing), file=sys.stderr)
        return 1

    image = Image()
    if args.rebuild:
        image.ensure(rebuild=True)
    info = image.ensure().info()
    measured = "now" if args.rebuild else f"at {info['built_at']}"
    print(f"image {image.digest}: built in {info['build_seconds']} s ({measured}), "
          f"{int(str(info['size_bytes'])) / 1e6:.0f} MB on disk")  # fmt: skip

    logins: list[float] = []
    figures: dict[str, list[float]] = {
        "first boot to SSH (fresh disk)": [],
        "power-on to SSH (existing disk)": [],
        "wipe to SSH": [],
        "guest reboot to SSH": [],
    }
    for n in range(args.runs):
        vm = TestVM(f"bench-{os.getpid()}-{n}", image)
        try:
            vm.create()
            figures["first boot to SSH (fresh disk)"].append(to_ssh(vm, vm.up))
            logins.append(to_ssh(vm))
            vm.power_off()
            figures["power-on to SSH (existing disk)"].append(to_ssh(vm, vm.power_on))
            figures["wipe to SSH"].append(to_ssh(vm, vm.wipe))
            figures["guest reboot to SSH"].append(to_ssh(vm, vm.reboot))
        finally:
            vm.destroy()

    print(f"{args.runs} runs, load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    baseline = report("one SSH login (baseline)", logins)
    for label, seconds in figures.items():
        median = report(label, seconds)
        print(f"{'':<34} = {median / baseline:.1f} SSH logins")
    return 0


if __name__ == "__main__":
    sys.exit(main())
