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
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import wraps
from pathlib import Path
from types import TracebackType
from typing import Concatenate, ParamSpec, TypeVar

from mlopsdeploy.testbed import cgroups, ssh
from mlopsdeploy.testbed.files import write_atomically
from mlopsdeploy.testbed.guest import guest_exec
from mlopsdeploy.testbed.image import Image, image_dir
from mlopsdeploy.testbed.network import Link, indexes_in_use, remove_namespace
from mlopsdeploy.testbed.overlay import Overlay, mounts_under, unmount
from mlopsdeploy.testbed.processes import ProcessId, namespace_init
from mlopsdeploy.testbed.state import Record, State, free_index

P = ParamSpec("P")
R = TypeVar("R")

NAME_PATTERN = re.compile(r"[a-z0-9][a-z0-9-]{0,39}")
READY_STATES = ("running", "degraded")


class CommandFailed(subprocess.CalledProcessError):
    """A command run over SSH exited non-zero; the message carries its stderr."""

    def __str__(self) -> str:
        stderr = (self.stderr or "").strip()[-2000:]
        return f"{super().__str__()}\nstderr: {stderr}"


def exclusive(
    method: Callable[Concatenate[TestVM, P], R],
) -> Callable[Concatenate[TestVM, P], R]:
    """Run a lifecycle method under the machine's lock (see State.machine_lock)."""

    @wraps(method)
    def locked(self: TestVM, *args: P.args, **kwargs: P.kwargs) -> R:
        with self._exclusive():
            return method(self, *args, **kwargs)

    return locked


class TestVM:
    """A disposable course VM; a context manager that boots it and tears everything down.

    >>> with TestVM("demo") as vm:
    ...     vm.run("whoami").stdout
    'student-admin\\n'
    """

    __test__ = False  # not a pytest test class, despite the name
    ssh_port = 22

    def __init__(
        self,
        name: str,
        image: Image | None = None,
        *,
        state: State | None = None,
        persistent: bool = False,
    ) -> None:
        """Handle on machine `name`; nothing is created until `create()`/`up()`.

        + image: what to boot when the machine is created (default: the current recipe)
        + persistent: created machines belong to no process (the CLI's), so `cleanup_stale`
          never removes them; otherwise the creating process owns the machine
        """
        if not NAME_PATTERN.fullmatch(name):
            raise ValueError(f"machine name {name!r} must match {NAME_PATTERN.pattern}")
        self.name = name
        self.state = state or (image.state if image else State.default())
        self.image = image or Image(self.state)
        self.persistent = persistent
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
            Link(self.netns, record.index).destroy()
        remove_namespace(self.netns)
        cgroups.remove(self.name)
        if self.dir.exists():
            subprocess.run(["rm", "-rf", "--one-file-system", str(self.dir)], check=True)
        with self.state.registry.locked() as records:
            records.pop(self.name, None)
        self._record = None
        self.state.machine_lock_path(self.name).unlink(missing_ok=True)

    # -- faults --------------------------------------------------------------------------------

    @exclusive
    def power_off(self, force: bool = False, timeout: float = 30) -> None:
        """Shut the machine down: orderly (guest runs its shutdown) or, with `force`, by
        killing its init — the pulled plug."""
        self._stop(force=force, timeout=timeout)
        self.overlay.unmount()

    def power_on(self, timeout: float = 60) -> TestVM:
        return self.up(timeout)

    @exclusive
    def reboot(self, timeout: float = 60) -> None:
        """`systemctl reboot` in the guest; returns once it is back and ready.

        Issued through the host-side console, so it works with the network cut too. The guest's
        exit code 133 makes the supervisor boot it again.
        """
        before = self.boot_count
        guest_exec(self._init(), ["systemctl", "reboot"])
        deadline = time.monotonic() + timeout
        while self.boot_count <= before:
            self._check_alive()
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.name} did not restart after reboot")
            time.sleep(0.05)
        self.wait_ready(deadline - time.monotonic())

    @exclusive
    def wipe(self, timeout: float = 60) -> None:
        """Re-image: the whole disk back to the pristine image (new host keys, only the
        default key), running again."""
        self._stop(force=True, timeout=10)
        self.overlay.unmount()
        self.overlay.discard_changes()
        self.known_hosts.unlink(missing_ok=True)
        self.up(timeout)

    @exclusive
    def wipe_home(self) -> None:
        """Restore the user's home to the image's pristine home (only the default key).

        The machine keeps running. The user's sessions and systemd user manager are stopped
        first (a home swapped under running processes would be neither wiped nor intact), then
        the user manager is started again if the user lingers — but the user's own unit files
        were in the home, so lingering services are gone until a deploy restores them. System
        services that merely run as the user are left alone.
        """
        init = self._init()
        guest_exec(init, ["systemctl", "stop", f"user@{self.uid}.service"])
        guest_exec(init, ["loginctl", "terminate-user", self.user], check=False)
        home = self.rootfs / "home" / self.user
        pristine = self.overlay.lower / "home" / self.user
        subprocess.run(["rm", "-rf", "--one-file-system", str(home)], check=True)
        subprocess.run(["cp", "-a", str(pristine), str(home)], check=True)
        if (self.rootfs / "var/lib/systemd/linger" / self.user).exists():
            guest_exec(init, ["systemctl", "start", f"user@{self.uid}.service"])

    def cut_network(self) -> None:
        """Unplug the machine's link: it keeps running but nothing reaches it."""
        self.link.set_up(False)

    def restore_network(self) -> None:
        self.link.set_up(True)

    # -- talking to the guest ------------------------------------------------------------------

    def ssh_argv(
        self,
        command: str | None = None,
        key: Path | None = None,
        user: str | None = None,
        tty: bool = False,
    ) -> list[str]:
        """The OpenSSH command line to reach the machine (default key and user)."""
        return ssh.ssh_argv(
            self.address,
            user or self.user,
            key or self.default_key,
            self.known_hosts,
            port=self.ssh_port,
            command=command,
            tty=tty,
        )

    def run(
        self,
        command: str,
        *,
        key: Path | None = None,
        user: str | None = None,
        check: bool = True,
        timeout: float = 120,
        input: str | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run a shell command on the machine over SSH, as a user would.

        Raises CommandFailed (with stderr) on a non-zero exit when `check`; exit code 255 is
        ssh's own failure (refused, unreachable, key rejected).
        """
        argv = self.ssh_argv(command, key=key, user=user)
        result = subprocess.run(
            argv,
            input=input,
            stdin=None if input is not None else subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if check and result.returncode != 0:
            raise CommandFailed(result.returncode, argv, result.stdout, result.stderr)
        return result

    def host_key_fingerprint(self) -> str:
        """SHA256 fingerprint of the ed25519 host key sshd serves now (via ssh-keyscan)."""
        return ssh.served_host_key_fingerprint(self.address, self.ssh_port)

    def wait_ready(self, timeout: float = 60) -> str:
        """Wait until the guest finished booting and sshd answers; return systemd's state.

        Checked from the host side — `systemctl is-system-running --wait` on the guest's
        console, then sshd's banner on the network — not by logging in: a deployed machine
        may rightly refuse the default key. With the link cut, only the console is checked.
        """
        deadline = time.monotonic() + timeout
        state = "not booted"
        while True:
            self._check_alive()
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(
                    f"{self.name} not ready after {timeout:.0f}s: {state}\n{self._diagnosis()}"
                )
            state = self._system_state(remaining)
            if state in READY_STATES and (
                self.network_is_cut()
                or ssh.banner(self.address, self.ssh_port, timeout=min(remaining, 1.0))
            ):
                self._refresh_known_hosts()
                return state
            time.sleep(0.05)

    def _diagnosis(self) -> str:
        """Failed units, sshd's log and the console's end: what a boot that never got
        ready needs explained."""
        try:
            init = self._init()
            failed = guest_exec(init, ["systemctl", "--failed", "--no-legend"], check=False)
            journal = ["journalctl", "-b", "--no-pager", "-n", "20", "-u", "ssh.service"]
            sshd = guest_exec(init, journal, check=False)
        except (RuntimeError, subprocess.TimeoutExpired) as error:
            return f"guest unreachable on its console ({error})\n{self.console_log()}"
        return f"failed units:\n{failed.stdout}\nssh.service:\n{sshd.stdout}\n{self.console_log()}"

    def _system_state(self, timeout: float) -> str:
        """systemd's state once its boot is over, or why it cannot be asked yet."""
        try:
            result = guest_exec(
                self._init(),
                ["systemctl", "is-system-running", "--wait"],
                timeout=timeout,
                check=False,
            )
        except (RuntimeError, subprocess.TimeoutExpired) as error:
            return f"unknown ({error})"
        return result.stdout.strip() or result.stderr.strip()

    def console_log(self, lines: int = 40) -> str:
        """The end of the guest's console output (boot messages), for error reports."""
        log = self.dir / "console.log"
        if not log.exists():
            return ""
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])

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

    def _nspawn_argv(self) -> list[str]:
        return [
            "systemd-nspawn",
            "--quiet",
            f"--directory={self.rootfs}",
            "--boot",
            f"--machine={self.name}",
            "--register=no",
            "--keep-unit",
            f"--network-namespace-path={self.link.netns_path}",
            # Root on a real VM manages its network; the namespace keeps that to its own link.
            "--capability=CAP_NET_ADMIN",
            "--resolv-conf=off",
            "--timezone=off",
            "--link-journal=no",
            "--console=read-only",
        ]

    def _start(self) -> None:
        self.overlay.mount()
        argv = [sys.executable, "-m", "mlopsdeploy.testbed.supervisor", str(self.dir)]
        argv += ["--cgroup", self.name, "--"]
        with (self.dir / "supervisor.log").open("ab") as log:
            self._supervisor = subprocess.Popen(
                [*argv, *self._nspawn_argv()],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
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
        lines = ssh.known_hosts_lines(self.address, self.ssh_port, self.rootfs)
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
        if not force and _wait_gone(pids, timeout):
            self._forget_pids()
            return
        if nspawn is not None and nspawn.alive():
            init = namespace_init(nspawn.pid)
            if init is not None:
                init.signal(signal.SIGKILL)
        if not _wait_gone(pids, 10):
            for pid in pids:
                pid.signal(signal.SIGKILL)
            if not _wait_gone(pids, 5):
                raise RuntimeError(f"cannot stop machine {self.name}: {pids} still alive")
        self._forget_pids()

    def _forget_pids(self) -> None:
        """Drop the pid files of stopped processes; reap the supervisor if it was ours."""
        if self._supervisor is not None and self._supervisor.poll() is not None:
            self._supervisor = None
        for name in ("supervisor.pid", "nspawn.pid"):
            (self.dir / name).unlink(missing_ok=True)


def _wait_gone(pids: list[ProcessId], timeout: float) -> bool:
    """Poll until none of `pids` is alive; False if some still are at the deadline."""
    deadline = time.monotonic() + timeout
    while any(pid.alive() for pid in pids):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def machines(state: State | None = None) -> list[TestVM]:
    """Handles on every registered machine, by name."""
    state = state or State.default()
    handles = []
    for name, record in sorted(state.registry.snapshot().items()):
        vm = TestVM(name, state=state)
        vm._record = record  # one consistent snapshot, even while others create and destroy
        handles.append(vm)
    return handles


def cleanup_stale(prefix: str = "", state: State | None = None) -> list[str]:
    """Destroy machines named `prefix...` whose owning process is gone; return their names.

    A test run killed hard (SIGKILL, a crashed xdist worker) cannot tear down its machines.
    Anyone can call this safely: machines whose owner still runs, and user-managed ones
    (created by the CLI), are never touched.
    """
    state = state or State.default()
    stale = [
        name
        for name, record in state.registry.snapshot().items()
        if name.startswith(prefix) and record.stale()
    ]
    for name in stale:
        TestVM(name, state=state).destroy()
    return stale
