"""mlopsdeploy: get an ML web app onto SSH-reachable Linux VMs with pyinfra, and keep it there.

Public API (implementation lives in the modules named below; see docs/deploy.md)::

    import mlopsdeploy
    hosts = mlopsdeploy.load_hosts()            # from ~/.config/mlopsdeploy/hosts.toml or env
    result = mlopsdeploy.deploy(hosts)          # -> DeployResult, per host: ok, changed, timings
    mlopsdeploy.rollback(hosts)

Names are resolved lazily so that ``import mlopsdeploy.model`` or ``mlopsdeploy.testbed`` does
not pay for importing pyinfra.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mlopsdeploy.config import ConfigError, HostConfig, load_hosts
    from mlopsdeploy.errors import AccessError, DeployError, HostKeyChangedError
    from mlopsdeploy.runner import (
        DeployOptions,
        DeployResult,
        HostResult,
        StepResult,
        deploy,
        ensure_access,
        rollback,
    )

_EXPORTS = {
    "AccessError": "mlopsdeploy.errors",
    "ConfigError": "mlopsdeploy.config",
    "DeployError": "mlopsdeploy.errors",
    "DeployOptions": "mlopsdeploy.runner",
    "DeployResult": "mlopsdeploy.runner",
    "HostConfig": "mlopsdeploy.config",
    "HostKeyChangedError": "mlopsdeploy.errors",
    "HostResult": "mlopsdeploy.runner",
    "StepResult": "mlopsdeploy.runner",
    "deploy": "mlopsdeploy.runner",
    "ensure_access": "mlopsdeploy.runner",
    "load_hosts": "mlopsdeploy.config",
    "rollback": "mlopsdeploy.runner",
}

__all__ = [
    "AccessError",
    "ConfigError",
    "DeployError",
    "DeployOptions",
    "DeployResult",
    "HostConfig",
    "HostKeyChangedError",
    "HostResult",
    "StepResult",
    "deploy",
    "ensure_access",
    "load_hosts",
    "rollback",
]


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'mlopsdeploy' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
