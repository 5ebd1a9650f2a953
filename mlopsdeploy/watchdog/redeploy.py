"""Child process of a redeploy/re-provision repair: deploy one configured host by name.

``python -m mlopsdeploy.watchdog.redeploy NAME [--unconfirmed-host-key]``: the host is looked up
the way the watchdog found it (same config file and environment, inherited); prints one summary
line on stdout and exits 0 only when the host serves the release with correct labels. A changed
host key is accepted only as *unconfirmed* (no secrets go out until ``mlopsdeploy trust``); lines
starting with ``notice:`` tell the person so, or that the host's opt-in pushed them anyway.
"""

from __future__ import annotations

import argparse
import sys
import traceback

from mlopsdeploy.deployment.api import deploy
from mlopsdeploy.deployment.control.host_trust import recorded_fingerprint, withheld_notice
from mlopsdeploy.deployment.results import DeployOptions
from mlopsdeploy.watchdog.hosts import watched_hosts
from mlopsdeploy.watchdog.repairs import NOTICE


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mlopsdeploy.watchdog.redeploy")
    parser.add_argument("host")
    parser.add_argument("--unconfirmed-host-key", action="store_true")
    args = parser.parse_args(argv)
    (cfg,) = watched_hosts([args.host])
    options = DeployOptions(unconfirmed_host_key=args.unconfirmed_host_key)
    key_before = recorded_fingerprint(cfg)
    try:
        result = deploy([cfg], options).hosts[0]
    except Exception as exc:  # e.g. the model to ship fails its manifest: say so, briefly
        traceback.print_exc()
        print(f"deploy failed: {type(exc).__name__}: {exc}")
        return 1
    notice = withheld_notice(cfg)
    if notice:
        print(f"{NOTICE}{notice}")
    elif recorded_fingerprint(cfg) != key_before and key_before is not None:
        print(
            f"{NOTICE}secrets pushed to {cfg.name} after its host key changed to "
            f"{recorded_fingerprint(cfg)} with nobody confirming it: the host opted in "
            "(push_secrets_on_new_host_key = true)"
        )
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
