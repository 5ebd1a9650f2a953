"""Child process of a redeploy/re-provision repair: deploy one configured host by name.

``python -m mlopsdeploy.watchdog.redeploy NAME [--accept-new-host-key]``: the host is looked up
the way the watchdog found it (same config file and environment, inherited); prints one summary
line on stdout and exits 0 only when the host serves the release with correct labels.
"""

from __future__ import annotations

import argparse
import sys
import traceback

from mlopsdeploy.deployment.api import deploy
from mlopsdeploy.deployment.results import DeployOptions
from mlopsdeploy.watchdog.hosts import watched_hosts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mlopsdeploy.watchdog.redeploy")
    parser.add_argument("host")
    parser.add_argument("--accept-new-host-key", action="store_true")
    args = parser.parse_args(argv)
    (cfg,) = watched_hosts([args.host])
    options = DeployOptions(accept_new_host_key=args.accept_new_host_key)
    try:
        result = deploy([cfg], options).hosts[0]
    except Exception as exc:  # e.g. the model to ship fails its manifest: say so, briefly
        traceback.print_exc()
        print(f"deploy failed: {type(exc).__name__}: {exc}")
        return 1
    if result.ok:
        changed = ", ".join(result.changed) or "nothing"
        took = result.timings.get("total", 0.0)
        print(f"deployed {result.release} in {took:.1f}s; changed: {changed}")
        return 0
    cause = str(result.error).splitlines()[0] if result.error else "unknown failure"
    print(f"deploy failed: {cause}")
    print(str(result.error), file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
