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
    from mlopsdeploy.deployment.api import deploy, ensure_access, rollback
    from mlopsdeploy.deployment.results import DeployOptions, DeployResult, HostResult, StepResult
    from mlopsdeploy.errors import AccessError, DeployError, HostKeyChangedError

_EXPORTS = {
    "AccessError": "mlopsdeploy.errors",
    "ConfigError": "mlopsdeploy.config",
    "DeployError": "mlopsdeploy.errors",
    "DeployOptions": "mlopsdeploy.deployment.results",
    "DeployResult": "mlopsdeploy.deployment.results",
    "HostConfig": "mlopsdeploy.config",
    "HostKeyChangedError": "mlopsdeploy.errors",
    "HostResult": "mlopsdeploy.deployment.results",
    "StepResult": "mlopsdeploy.deployment.results",
    "deploy": "mlopsdeploy.deployment.api",
    "ensure_access": "mlopsdeploy.deployment.api",
    "load_hosts": "mlopsdeploy.config",
    "rollback": "mlopsdeploy.deployment.api",
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
