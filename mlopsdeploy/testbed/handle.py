"""What TestVM's job-sized parts (guest access, power faults) need from its lifecycle core.

TestVM is assembled from mixins so each module stays one job; this declares, once, the members
they use and machine.py provides.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Self

from mlopsdeploy.testbed.network import Link
from mlopsdeploy.testbed.overlay import Overlay
from mlopsdeploy.testbed.processes import ProcessId


class MachineHandle(ABC):
    """A machine's identity, paths and lifecycle internals, as its mixins see them."""

    name: str

    @property
    @abstractmethod
    def address(self) -> str: ...

    @property
    @abstractmethod
    def ssh_address(self) -> str: ...

    @property
    @abstractmethod
    def ssh_port(self) -> int: ...

    @property
    @abstractmethod
    def user(self) -> str: ...

    @property
    @abstractmethod
    def uid(self) -> int: ...

    @property
    @abstractmethod
    def default_key(self) -> Path: ...

    @property
    @abstractmethod
    def dir(self) -> Path: ...

    @property
    @abstractmethod
    def known_hosts(self) -> Path: ...

    @property
    @abstractmethod
    def rootfs(self) -> Path: ...

    @property
    @abstractmethod
    def overlay(self) -> Overlay: ...

    @property
    @abstractmethod
    def link(self) -> Link: ...

    @property
    @abstractmethod
    def boot_count(self) -> int: ...

    @abstractmethod
    def network_is_cut(self) -> bool: ...

    @abstractmethod
    def up(self, timeout: float = 60) -> Self: ...

    @abstractmethod
    def wait_ready(self, timeout: float = 60) -> str: ...

    @abstractmethod
    def _exclusive(self) -> AbstractContextManager[None]: ...

    @abstractmethod
    def _stop(self, force: bool, timeout: float) -> None: ...

    @abstractmethod
    def _init(self) -> ProcessId: ...

    @abstractmethod
    def _check_alive(self) -> None: ...

    @abstractmethod
    def _refresh_known_hosts(self) -> None: ...
