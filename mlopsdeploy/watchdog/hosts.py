"""Which hosts to watch: the deploy's own configuration, optionally narrowed down by name."""

from __future__ import annotations

from collections.abc import Sequence

from mlopsdeploy.config import ConfigError, HostConfig, config_path, load_hosts


def watched_hosts(names: Sequence[str] = ()) -> list[HostConfig]:
    """The configured hosts (environment, then the hosts file), only `names` when given."""
    hosts = load_hosts()
    if not hosts:
        raise ConfigError(
            f"no hosts configured: write {config_path()} or set MLOPSDEPLOY_HOST "
            "(see docs/deploy.md)"
        )
    if not names:
        return hosts
    by_name = {cfg.name: cfg for cfg in hosts}
    unknown = [name for name in names if name not in by_name]
    if unknown:
        raise ConfigError(f"unknown hosts {unknown}; configured: {sorted(by_name)}")
    return [by_name[name] for name in names]
