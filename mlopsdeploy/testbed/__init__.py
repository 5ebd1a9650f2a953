"""Disposable local course VMs (systemd-nspawn) with real systemd, sshd, a sudo user and an
address of their own — to deploy onto, break, and watch recover. See docs/testbed.md."""

from mlopsdeploy.testbed.guest_access import CommandFailed
from mlopsdeploy.testbed.image import Image, Recipe
from mlopsdeploy.testbed.machine import TestVM
from mlopsdeploy.testbed.registered import cleanup_stale, machines
from mlopsdeploy.testbed.requirements import missing_requirements
from mlopsdeploy.testbed.state import State

__all__ = [
    "CommandFailed",
    "Image",
    "Recipe",
    "State",
    "TestVM",
    "cleanup_stale",
    "machines",
    "missing_requirements",
]
