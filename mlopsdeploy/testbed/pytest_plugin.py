"""pytest fixtures for test VMs.

Register in the root conftest.py: `pytest_plugins = ["mlopsdeploy.testbed.pytest_plugin"]`.

Fixtures:
  testbed_image     session: the cached VM image (built on first use; one xdist worker builds,
                    the others wait on its lock); `--image trixie` makes it another Debian
                    release's, so every VM test of a run can be repeated on that release
  test_vm           a fresh, booted machine for one test, destroyed afterwards
  test_vm_factory   call it for as many fresh machines as a test needs
  module_vm         one machine shared by a module's tests (for read-mostly checks)
  release_image     session: ``release_image("trixie")`` is that Debian release's image, built
                    on first use; pass it to ``test_vm_factory(image=...)``

Tests using them are marked `vm` automatically. Where test VMs cannot run (not root, tools
missing), those tests skip with the exact list of what is missing. Machine names are
`pt-<pid>-<n>`: unique per xdist worker and per concurrent test run on the host. At session
start, machines of earlier runs that died without tearing down (`pt-*` with a dead owner) are
removed.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Iterator

import pytest

from mlopsdeploy.testbed.image import DEFAULT_RELEASE, RELEASES, Image
from mlopsdeploy.testbed.machine import TestVM
from mlopsdeploy.testbed.registered import cleanup_stale
from mlopsdeploy.testbed.requirements import missing_requirements

# MLOPSDEPLOY_VM_PREFIX: machines of concurrent test runs on one host stay apart by name.
NAME_PREFIX = os.environ.get("MLOPSDEPLOY_VM_PREFIX", "pt") + "-"
VM_FIXTURES = {"testbed_image", "test_vm", "test_vm_factory", "module_vm", "release_image"}
_numbers = itertools.count(1)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.getgroup("testbed", "test VMs (mlopsdeploy testbed)").addoption(
        "--image",
        choices=sorted(RELEASES),
        default=DEFAULT_RELEASE,
        help=f"Debian release of the test VMs (default {DEFAULT_RELEASE}): the deploy, "
        "watchdog and resilience tests then run on that release's Python",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "vm: needs a testbed VM (root, systemd-container, mmdebstrap)"
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    reason = skip_reason()
    for item in items:
        if VM_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.vm)
        if reason and item.get_closest_marker("vm"):
            item.add_marker(pytest.mark.skip(reason=reason))


def skip_reason() -> str | None:
    missing = missing_requirements()
    return "test VMs unavailable, missing: " + "; ".join(missing) if missing else None


def machine_name() -> str:
    return f"{NAME_PREFIX}{os.getpid()}-{next(_numbers)}"


class VMFactory:
    """Makes booted machines on demand and destroys all of them at teardown."""

    def __init__(self, image: Image) -> None:
        self.image = image
        self.machines: list[TestVM] = []

    def __call__(self, boot: bool = True, image: Image | None = None) -> TestVM:
        vm = TestVM(machine_name(), image or self.image)
        self.machines.append(vm)
        return vm.up() if boot else vm.create()

    def destroy_all(self) -> None:
        """Destroy every machine even if some destroy fails; then report the failures."""
        errors = []
        for vm in self.machines:
            try:
                vm.destroy()
            except Exception as error:
                errors.append(f"{vm.name}: {error}")
        self.machines.clear()
        if errors:
            raise RuntimeError("testbed teardown failed: " + "; ".join(errors))


@pytest.fixture(scope="session")
def testbed_image(request: pytest.FixtureRequest) -> Image:
    """The image of the `--image` release, built unless cached."""
    reason = skip_reason()
    if reason:
        pytest.skip(reason)
    cleanup_stale(prefix=NAME_PREFIX)
    return Image.for_release(request.config.getoption("image")).ensure()


@pytest.fixture(scope="session")
def release_image(testbed_image: Image) -> Callable[[str], Image]:
    """Images of other Debian releases (RELEASES), each built at most once, on first use."""

    def ensure(suite: str) -> Image:
        return Image.for_release(suite, testbed_image.state).ensure()

    return ensure


@pytest.fixture
def test_vm_factory(testbed_image: Image) -> Iterator[VMFactory]:
    factory = VMFactory(testbed_image)
    try:
        yield factory
    finally:
        factory.destroy_all()


@pytest.fixture
def test_vm(test_vm_factory: VMFactory) -> TestVM:
    return test_vm_factory()


@pytest.fixture(scope="module")
def module_vm(testbed_image: Image) -> Iterator[TestVM]:
    factory = VMFactory(testbed_image)
    try:
        yield factory()
    finally:
        factory.destroy_all()
