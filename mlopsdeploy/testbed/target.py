"""The embedded default target: a local testbed VM standing in for a course VM.

With no hosts configured, ``mlopsdeploy deploy``/``demo`` and ``inventory.py`` deploy to the
persistent testbed machine ``demo`` (booted on demand). The user's own key for it is generated
once into the state dir, exactly as a student would create one before replacing the shared
default key the testbed planted.
"""

from __future__ import annotations

import os
from pathlib import Path

from mlopsdeploy.config import DEFAULT_APP_PORT, HostConfig, state_dir
from mlopsdeploy.deployment.control.ssh_login import ensure_keypair
from mlopsdeploy.testbed import TestVM

DEMO_VM = os.environ.get("MLOPSDEPLOY_TESTBED_VM", "demo")


def own_key(directory: Path | None = None) -> Path:
    """The user's key for testbed VMs (``<state>/id_ed25519``), generated on first use."""
    return ensure_keypair((directory or state_dir()) / "id_ed25519")


def testbed_host(
    vm: TestVM,
    *,
    key: Path | None = None,
    known_hosts: Path | None = None,
    app_port: int = DEFAULT_APP_PORT,
    api_model: str | None = None,
) -> HostConfig:
    """A HostConfig for a testbed VM: its address, the default key it was issued, our own key.

    Behind forwarded ports (the course's layout) SSH and the app are reached on the public
    ports, and the app listens on the forward's target port inside the VM.
    """
    forwards = vm.forwards
    return HostConfig(
        name=vm.name,
        address=vm.ssh_address,
        ssh_port=vm.ssh_port,
        user=vm.user,
        own_key=key or own_key(),
        default_key=vm.default_key,
        app_port=forwards.app if forwards else app_port,
        listen_port=forwards.app_target if forwards else None,
        api_model=api_model,
        known_hosts=known_hosts or state_dir() / "known_hosts",
    )


def demo_vm() -> tuple[TestVM, bool]:
    """The persistent demo machine, booted; ``True`` when this call created it from scratch.

    A running machine is used as it is: ``TestVM.up()`` checks readiness by logging in with the
    default key, which a deployed machine rightly rejects.
    """
    vm = TestVM(DEMO_VM, persistent=True)
    if vm.exists() and vm.is_running():
        return vm, False
    created = not vm.exists()
    return vm.up(), created
