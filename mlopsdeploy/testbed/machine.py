"""TestVM: one disposable course VM — boot, reach over SSH, break, restore, tear down.

A machine is a systemd-nspawn container booting the image through an overlay, inside its own
network namespace, kept alive across guest reboots by a supervisor process. Everything about it
lives on disk (the registry record, pid files, its dir under machines/), so a TestVM object is
only a handle: the CLI in one process can stop what a test started in another, and a crashed
owner's machines can be found and removed later (`cleanup_stale`).
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import ParamSpec, TypeVar

from mlopsdeploy.testbed import cgroups, nat, ssh
from mlopsdeploy.testbed.files import write_atomically
from mlopsdeploy.testbed.guest_access import GuestAccess
from mlopsdeploy.testbed.image import Image, image_dir
from mlopsdeploy.testbed.locking import exclusive
from mlopsdeploy.testbed.nat import PortForwards
from mlopsdeploy.testbed.network import Link, indexes_in_use, remove_namespace
from mlopsdeploy.testbed.overlay import Overlay, mounts_under, unmount
from mlopsdeploy.testbed.power import MachinePower
from mlopsdeploy.testbed.processes import ProcessId, namespace_init, wait_gone
from mlopsdeploy.testbed.state import Record, State, free_index
from mlopsdeploy.testbed.supervisor import launch, nspawn_argv

P = ParamSpec("P")
R = TypeVar("R")

FORWARDS_FILE = "forwards.json"
NAME_PATTERN = re.compile(r"[a-z0-9][a-z0-9-]{0,39}")


class TestVM(GuestAccess, MachinePower):
    """A disposable course VM; a context manager that boots it and tears everything down.

    >>> with TestVM("demo") as vm:
    ...     vm.run("whoami").stdout
    'student-admin\\n'
    """

    __test__ = False  # not a pytest test class, despite the name

    def __init__(
        self,
        name: str,
        image: Image | str | None = None,
        *,
        state: State | None = None,
        persistent: bool = False,
        forwards: PortForwards | None = None,
    ) -> None:
        """Handle on machine `name`; nothing is created until `create()`/`up()`.

        + image: what to boot when the machine is created: an Image, or the name of a Debian
          release (``"trixie"``, see image.RELEASES); default the current bookworm recipe
        + persistent: created machines belong to no process (the CLI's), so `cleanup_stale`
          never removes them; otherwise the creating process owns the machine
        + forwards: the course's port layout: reached only through these host ports (nat.py);
          recorded with the machine, so every later handle on it sees them too
        """
        if not NAME_PATTERN.fullmatch(name):
            raise ValueError(f"machine name {name!r} must match {NAME_PATTERN.pattern}")
        self.name = name
        if isinstance(image, str):
            image = Image.for_release(image, state)
        self.state = state or (image.state if image else State.default())
        self.image = image or Image(self.state)
        self.persistent = persistent
        self._forwards = forwards
        self._supervisor: subprocess.Popen[bytes] | None = None
        self._holding_lock = False
        self._record: Record | None = None

    def __repr__(self) -> str:
        return f"TestVM({self.name!r})"

    def __enter__(self) -> TestVM:
        try:
            return self.up()
        except BaseException:
            self.destroy()
            raise

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.destroy()

    # -- identity and addresses -------------------------------------------------------------

    @property
    def record(self) -> Record:
        """The registration; cached, as index and image never change while it exists."""
        if self._record is None:
            self._record = self.state.registry.snapshot().get(self.name)
        if self._record is None:
            raise LookupError(f"no testbed machine named {self.name!r}")
        return self._record

    def exists(self) -> bool:
        return self.name in self.state.registry.snapshot()

    @property
    def index(self) -> int:
        return self.record.index

    @property
    def netns(self) -> str:
        return f"mlopsdeploy-{self.name}"

    @property
    def link(self) -> Link:
        return Link(self.netns, self.index)

    @property
    def address(self) -> str:
        """The guest's address, 10.213.N.2: where SSH and the deployed app are reached."""
        return self.link.guest_address

    @property
    def host_address(self) -> str:
        """The host's end of the link, 10.213.N.1: the only address the guest can reach."""
        return self.link.host_address

    @property
    def forwards(self) -> PortForwards | None:
        """The forwarded ports this machine is reached through (None: reached directly)."""
        return self._forwards or PortForwards.load(self.dir / FORWARDS_FILE)

    @property
    def ssh_address(self) -> str:
        """Where sshd is reached: the guest, or behind forwards the host end of the link."""
        return self.host_address if self.forwards else self.address

    @property
    def ssh_port(self) -> int:
        forwards = self.forwards
        return forwards.ssh if forwards else nat.GUEST_SSH_PORT

    @property
    def user(self) -> str:
        return str(self._image_recipe()["user"])

    @property
    def uid(self) -> int:
        return int(str(self._image_recipe()["uid"]))

    @property
    def default_key(self) -> Path:
        """The shared default private key every fresh machine trusts."""
        return self.image.default_key

    @property
    def dir(self) -> Path:
        return self.state.machine_dir(self.name)

    @property
    def known_hosts(self) -> Path:
        """A known_hosts file with this machine's current host keys (for ssh, pyinfra...)."""
        return self.dir / "known_hosts"

    @property
    def rootfs(self) -> Path:
        """The machine's root filesystem as the host sees it (mounted while it runs)."""
        return self.dir / "rootfs"

    @property
    def overlay(self) -> Overlay:
        return Overlay(
            lower=image_dir(self.state, self.record.image) / "rootfs",
            upper=self.dir / "upper",
            work=self.dir / "work",
            merged=self.rootfs,
        )

    @property
    def boot_count(self) -> int:
        """How often nspawn was started for this machine: a reboot shows as an increment."""
        boots = self.dir / "boots"
        return int(boots.read_text()) if boots.exists() else 0

    def is_running(self) -> bool:
        return any(p is not None and p.alive() for p in self._pids())

    def network_is_cut(self) -> bool:
        return not self.link.is_up()

    def _image_recipe(self) -> dict[str, object]:
        info = json.loads((image_dir(self.state, self.record.image) / "image.json").read_text())
        recipe: dict[str, object] = info["recipe"]
        return recipe

    # -- lifecycle -----------------------------------------------------------------------------

    @exclusive
    def create(self) -> TestVM:
        """Register the machine (index, address) and plumb its network; idempotent."""
        if not self.exists():
            # Before taking the registry lock: a build holds the build lock and then takes
            # the registry lock to prune, so the reverse order here could deadlock.
            self.image.ensure()
        with self.state.registry.locked() as records:
            if self.name not in records:
                owner = None if self.persistent else ProcessId.current()
                index = free_index(records, indexes_in_use())
                records[self.name] = Record(self.name, index, self.image.digest, owner)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.link.create()
        if self._forwards is not None:
            self._forwards.save(self.dir / FORWARDS_FILE)
        if self.forwards is not None:
            nat.apply(self.link, self.forwards)
        return self

    @exclusive
    def up(self, timeout: float = 60) -> TestVM:
        """Create if needed, boot unless running, and wait until SSH and systemd are ready."""
        self.create()
        if not self.is_running():
            self._start()
        self.wait_ready(timeout)
        return self

    def down(self, timeout: float = 30) -> None:
        """Orderly shutdown; disk, address and registration stay (`up` boots it again)."""
        self.power_off(timeout=timeout)

    @exclusive
    def destroy(self) -> None:
        """Remove every trace: processes, mounts, network, files, registration.

        Idempotent and tolerant of partial state (a crash half way through create or destroy):
        each step only acts on what still exists, and the registration goes last so a failed
        destroy can be retried.
        """
        self._stop(force=True, timeout=10)
        cgroups.kill(self.name)  # whatever no pid file knew about, e.g. after a crash
        if self._supervisor is not None:
            self._supervisor.wait(timeout=10)  # it ends once its nspawn is gone
            self._supervisor = None
        for mount in mounts_under(self.dir):
            unmount(mount)
        record = self.state.registry.snapshot().get(self.name)
        if record is not None:
            nat.remove(record.index)
            Link(self.netns, record.index).destroy()
        remove_namespace(self.netns)
        cgroups.remove(self.name)
        if self.dir.exists():
            subprocess.run(["rm", "-rf", "--one-file-system", str(self.dir)], check=True)
        with self.state.registry.locked() as records:
            records.pop(self.name, None)
        self._record = None
        self.state.machine_lock_path(self.name).unlink(missing_ok=True)

    # -- internals -----------------------------------------------------------------------------

    @contextmanager
    def _exclusive(self) -> Iterator[None]:
        """The machine lock, re-entrant within this handle (wipe calls up, and so on)."""
        if self._holding_lock:
            yield
            return
        with self.state.machine_lock(self.name):
            self._holding_lock = True
            try:
                yield
            finally:
                self._holding_lock = False

    def _start(self) -> None:
        self.overlay.mount()
        nspawn = nspawn_argv(self.name, self.rootfs, self.link.netns_path)
        self._supervisor = launch(self.dir, self.name, nspawn)
        identity = ProcessId.of(self._supervisor.pid)
        if identity is None:
            raise RuntimeError(f"supervisor for {self.name} exited at once: {self.console_log()}")
        identity.write(self.dir / "supervisor.pid")

    def _pids(self) -> tuple[ProcessId | None, ProcessId | None]:
        """(supervisor, nspawn) as recorded in the machine's pid files."""
        return (
            ProcessId.read(self.dir / "supervisor.pid"),
            ProcessId.read(self.dir / "nspawn.pid"),
        )

    def _init(self) -> ProcessId:
        """The guest's PID 1 (its systemd) as seen from the host."""
        nspawn = self._pids()[1]
        init = namespace_init(nspawn.pid) if nspawn and nspawn.alive() else None
        if init is None:
            raise RuntimeError(f"machine {self.name} is not running")
        return init

    def _check_alive(self) -> None:
        if not self.is_running():
            raise RuntimeError(
                f"machine {self.name} is not running; console:\n{self.console_log()}"
            )

    def _refresh_known_hosts(self) -> None:
        lines = ssh.known_hosts_lines(self.ssh_address, self.ssh_port, self.rootfs)
        write_atomically(self.known_hosts, "".join(f"{line}\n" for line in lines))

    def _stop(self, force: bool, timeout: float) -> None:
        """Stop supervisor and nspawn. Orderly: SIGTERM (nspawn asks init to power off).
        Forced, or when the orderly way overruns: SIGKILL the guest's init, which ends the
        whole container; SIGKILL to our own recorded pids is the last resort."""
        supervisor, nspawn = self._pids()
        if supervisor is not None and supervisor.alive():
            supervisor.signal(signal.SIGTERM)
        elif nspawn is not None:
            nspawn.signal(signal.SIGTERM)
        pids = [p for p in (supervisor, nspawn) if p is not None]
        if not force and wait_gone(pids, timeout):
            self._forget_pids()
            return
        if nspawn is not None and nspawn.alive():
            init = namespace_init(nspawn.pid)
            if init is not None:
                init.signal(signal.SIGKILL)
        if not wait_gone(pids, 10):
            for pid in pids:
                pid.signal(signal.SIGKILL)
            if not wait_gone(pids, 5):
                raise RuntimeError(f"cannot stop machine {self.name}: {pids} still alive")
        self._forget_pids()

    def _forget_pids(self) -> None:
        """Drop the pid files of stopped processes; reap the supervisor if it was ours."""
        if self._supervisor is not None and self._supervisor.poll() is not None:
            self._supervisor = None
        for name in ("supervisor.pid", "nspawn.pid"):
            (self.dir / name).unlink(missing_ok=True)
