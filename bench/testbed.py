"""Testbed figures: image build time and size, boot-to-ready, wipe and reboot times.

    python bench/testbed.py [--runs 5] [--rebuild]

"Ready" is what `TestVM.up()` waits for: an SSH login with the default key succeeds and
systemd reports the boot finished. Each figure is the median of --runs runs (min and max
beside it); the first boot of a fresh machine is set against a restart of an existing one, so
the cost of first-boot work (host key generation, a fresh overlay) shows as a ratio. Needs
root; uses machines named bench-<pid>-<n>, destroyed at the end.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable

from mlopsdeploy.testbed import Image, TestVM, missing_requirements


def timed(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
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

    first_boots, restarts, wipes, reboots = [], [], [], []
    for n in range(args.runs):
        vm = TestVM(f"bench-{os.getpid()}-{n}", image)
        try:
            vm.create()
            first_boots.append(timed(vm.up))
            vm.power_off()
            restarts.append(timed(vm.power_on))
            wipes.append(timed(vm.wipe))
            reboots.append(timed(vm.reboot))
        finally:
            vm.destroy()

    print(f"{args.runs} runs, load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    first = report("first boot to ready (fresh disk)", first_boots)
    again = report("power-on to ready (existing disk)", restarts)
    report("wipe to ready", wipes)
    report("guest reboot to ready", reboots)
    print(f"first boot / power-on: {first / again:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
