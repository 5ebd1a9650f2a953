"""What a fault is: a named injector, what it breaks, and the recovery it expects.

A fault is data plus an injector (as in Chaos Toolkit): the resilience suite, the watchdog's
tests and a person at a prompt all break a host the same way and agree on what "recovered"
should mean. Injectors act through two narrow doors only — a shell on the guest as the deploy
user, and the host-side machine controls of a test VM — so that nothing here ever signals a
process on the control machine by name (nspawn guests' processes are visible there).
"""

from __future__ import annotations

import shlex
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass
from typing import Protocol, runtime_checkable

from mlopsdeploy.deployment.host_commands import systemctl


class FaultError(RuntimeError):
    """The host did not let the fault be injected (or undone) as described."""


class CommandFailed(FaultError):
    """A guest command exited non-zero; ssh itself reports a lost session as 255."""

    def __init__(self, command: str, returncode: int, output: str) -> None:
        super().__init__(f"`{command}` exited {returncode}: {output.strip()[-500:]}")
        self.returncode = returncode


class NotApplicable(FaultError):
    """The target lacks what the fault needs, e.g. a whole-VM wipe on somebody's real VM."""


class Guest(Protocol):
    """A shell on the target as the deploy user, reached with the user's own key."""

    def sh(self, command: str) -> str:
        """Run `command`, return its stdout; raise CommandFailed when it exits non-zero."""
        ...


class Machine(Protocol):
    """Host-side controls of a test VM (mlopsdeploy.testbed.TestVM provides them)."""

    def wipe(self) -> None: ...

    def wipe_home(self) -> None: ...

    def reboot(self) -> None: ...

    def cut_network(self) -> None: ...

    def restore_network(self) -> None: ...


@runtime_checkable
class LimitedMachine(Machine, Protocol):
    """Controls of which only some work (a real VM's configured commands)."""

    def missing_control(self, control: str) -> str | None:
        """Why ``control`` (a Machine method name) is unavailable, or None."""
        ...


class ApiSwitch(Protocol):
    """Switches the Inference API stand-in the app talks to ("ok", "down", "slow", ...)."""

    def set_mode(self, mode: str) -> None: ...


@dataclass(frozen=True)
class Service:
    """The app's systemd units on the target, as the deploy installed them.

    + unit: the app as a whole (``mlopsdeploy.target`` for workers, else the single service)
    + workers: the worker units sharing the app's socket, in order; () for a single service
    """

    unit: str
    port: int
    user_scope: bool = True
    workers: tuple[str, ...] = ()

    def systemctl(self, *args: str) -> str:
        """A systemctl command line for this unit's manager (user manager or sudo system).

        The user manager is addressed through its runtime dir explicitly: a non-interactive
        ssh session does not always have XDG_RUNTIME_DIR set.
        """
        return systemctl("user" if self.user_scope else "system", *args)

    def main_pids(self, units: tuple[str, ...] = ()) -> str:
        """Shell that prints the MainPIDs of `units` (default: every process serving the app),
        failing when none of them has a running process."""
        show = self.systemctl("show", "-p", "MainPID", "--value", *(units or self.processes))
        return f"pids=$({show} | grep -E '^[1-9][0-9]*$') && echo $pids"

    @property
    def processes(self) -> tuple[str, ...]:
        """The units whose main processes serve the app: every worker, or the single unit."""
        return self.workers or (self.unit,)

    def signal_main(self, signal: str, units: tuple[str, ...] = ()) -> str:
        """Shell that sends `signal` to the main process of `units` (default: every serving
        process), by pid, never by process name, and prints the pids it signalled."""
        return f"pids=$({self.main_pids(units)}) && {self.kill(signal)} $pids && echo $pids"

    def kill(self, signal: str) -> str:
        """``kill -<signal>`` as this manager's processes need it (sudo for a system unit)."""
        return f"{'kill' if self.user_scope else 'sudo -n kill'} -{signal}"


@dataclass(frozen=True)
class AppPaths:
    """Where the deploy keeps what faults damage (absolute paths on the target).

    + root: the deploy root (venv, releases, the token file)
    + venv: the app's virtual environment
    + model_dir: the serving release's model directory
    """

    root: str
    venv: str
    model_dir: str


@dataclass
class Target:
    """Everything a fault may act through; parts a target lacks are None."""

    name: str
    guest: Guest
    service: Service
    paths: AppPaths
    machine: Machine | None = None
    api: ApiSwitch | None = None


@dataclass(frozen=True)
class WhileActive:
    """What must hold while a fault that cannot be healed around stays in place.

    + deploy_error: the deploy must refuse with an error matching this regex (and switch nothing)
    + new_release: that refused deploy is asked for a new release (a no-op run writes nothing)
    + local_serves: the local product keeps answering with correct labels meanwhile
    + api_error: the API product answers promptly with this error kind of the app's
      (`{"error": kind, "detail": ...}`) instead of hanging or failing obscurely
    """

    deploy_error: str | None = None
    new_release: bool = False
    local_serves: bool = False
    api_error: str | None = None


@dataclass(frozen=True)
class Recovery:
    """The recovery a fault expects, and the deploy options that recovery needs.

    + self_heal_seconds: how long systemd gets to heal it alone before anything else (0: it can't)
    + redeploy: whether re-running the deploy is the remedy when systemd does not heal it
    + accept_new_host_key: the VM was re-imaged, so its SSH host key legitimately changed
    + bootstrap_with_default_key: the own key is gone; log in once with the shared default key
    + while_active: checks made while the fault persists; recovery then starts after `undo`
      (None: recovery starts right after the injection)
    + hidden: the app serves on through the fault and only the deploy sees (and repairs) it,
      so the deploy is re-run at once instead of waiting for an outage that never comes
    """

    self_heal_seconds: float = 0.0
    redeploy: bool = True
    accept_new_host_key: bool = False
    bootstrap_with_default_key: bool = False
    while_active: WhileActive | None = None
    hidden: bool = False


class Fault(ABC):
    """One way of breaking a deployed host. Subclasses set name, breaks and recovery."""

    name: str
    breaks: str
    recovery: Recovery
    needs_machine: bool = False
    #: the client load counts from the start of the injection (a rolling restart *is* its
    #: injection), not from its end
    load_counts_from_injection: bool = False
    #: no request that starts after the fault took effect may fail: the suite checks it with its
    #: client load (requests in flight at that instant are reported, not counted against it)
    lossless: bool = False
    #: the Machine method it calls (a real VM may offer only some, see LimitedMachine)
    machine_control: str = ""
    needs_api: bool = False
    #: it acts on the release the deploy kept before the current one (`previous`): a host the
    #: suite made for itself gets a new release deployed first when it has none
    #: (resilience.experiment), a user's host without one skips the fault
    needs_previous_release: bool = False

    def not_applicable(self, target: Target) -> str | None:
        """Why this fault cannot be injected into `target`, or None when it can."""
        try:
            if self.needs_machine:
                require_machine(target, self.machine_control)
            if self.needs_api:
                require_api(target)
        except NotApplicable as missing:
            return str(missing)
        if self.needs_previous_release and not has_previous_release(target):
            return f"{target.name} has no previous release to roll back to"
        return None

    @abstractmethod
    def inject(self, target: Target) -> None:
        """Break the target; returns once the fault is in effect."""

    def undo(self, target: Target) -> None:
        """End the fault where that means something (free space, release a port). Idempotent."""
        return None

    def describe(self) -> dict[str, object]:
        """The catalogue entry as data, for reports and `--list` style output."""
        return {"name": self.name, "breaks": self.breaks, "recovery": asdict(self.recovery)}

    def check_applicable(self, target: Target) -> None:
        """Raise NotApplicable with the reason when the fault cannot be injected into `target`."""
        if reason := self.not_applicable(target):
            raise NotApplicable(reason)


def require_machine(target: Target, control: str = "") -> Machine:
    """The target's host-side controls; NotApplicable, with the reason, on a target without them
    (a real VM without machine commands) or without ``control`` among them."""
    if target.machine is None:
        raise NotApplicable(f"{target.name} has no host-side machine controls (not a test VM)")
    machine = target.machine
    if isinstance(machine, LimitedMachine) and (reason := machine.missing_control(control)):
        raise NotApplicable(f"{target.name}: {reason}")
    return machine


def require_api(target: Target) -> ApiSwitch:
    """The target's API stand-in switch; NotApplicable when its app talks to a real API."""
    if target.api is None:
        raise NotApplicable(f"{target.name} does not call an Inference API stand-in we control")
    return target.api


def has_previous_release(target: Target) -> bool:
    """Whether the deploy kept a release before the current one (``<root>/previous``): a cold
    deploy has none, and each later deploy of a new release makes the one it replaced that."""
    base = shlex.quote(target.paths.root)
    return bool(target.guest.sh(f"readlink {base}/previous || true").strip())


def poll_guest(guest: Guest, condition: str, seconds: float, interval: float = 0.1) -> None:
    """Wait, inside the guest in one ssh round trip, until the shell `condition` holds.

    Raises CommandFailed (exit 124) when it still does not hold after `seconds`.
    """
    loop = f"until {condition}; do sleep {interval:g}; done"
    guest.sh(f"timeout {seconds:g} sh -c {shlex.quote(loop)}")
