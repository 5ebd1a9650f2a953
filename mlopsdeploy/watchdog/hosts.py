"""Which hosts to watch: the deploy's own, optionally narrowed down by name.

The same resolution as `mlopsdeploy deploy`: the configured hosts, else the local testbed demo
VM - but only if it exists. The watchdog never creates or boots a VM; a demo VM that is down is
watched (and waited for) like any unreachable host.
"""

from __future__ import annotations

from collections.abc import Sequence

from mlopsdeploy.config import ConfigError, HostConfig, config_path, load_hosts


def watched_hosts(names: Sequence[str] = ()) -> list[HostConfig]:
    """The configured hosts (environment, then the hosts file), only `names` when given."""
    hosts = load_hosts() or _demo_vm()
    if not hosts:
        raise ConfigError(
            f"no hosts configured (write {config_path()} or set MLOPSDEPLOY_HOST, see "
            "docs/deploy.md) and no testbed demo VM (run `mlopsdeploy demo`)"
        )
    if not names:
        return hosts
    by_name = {cfg.name: cfg for cfg in hosts}
    unknown = [name for name in names if name not in by_name]
    if unknown:
        raise ConfigError(f"unknown hosts {unknown}; configured: {sorted(by_name)}")
    return [by_name[name] for name in names]


def _demo_vm() -> list[HostConfig]:
    from mlopsdeploy.testbed import TestVM
    from mlopsdeploy.testbed.target import DEMO_VM, testbed_host

    vm = TestVM(DEMO_VM, persistent=True)
    return [testbed_host(vm)] if vm.exists() else []
