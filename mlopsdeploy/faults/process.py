"""Faults on the app's processes: killed, hung, stopped, or the whole user session gone.

Every signal goes to the pid systemd records as a unit's MainPID, looked up inside the guest:
never a name or pattern, which on an nspawn testbed could hit the control machine's processes.
`sigkill`/`sigstop` hit every serving process (all workers at once, or the single unit); the
`-worker` faults are the same faults given one worker (`worker=1`), which the other workers must
cover without a user noticing until systemd has replaced it. The rolling faults (release switch,
rollback, restart) are what the deploy itself does to a serving host, run under the suite's
client load.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from typing import ClassVar

from mlopsdeploy.faults.base import (
    CommandFailed,
    Fault,
    FaultError,
    NotApplicable,
    Recovery,
    Target,
    WhileActive,
    poll_guest,
)

#: systemd restarts a dead app after its restart delay (a hung one after its watchdog timeout,
#: 10 s for a worker, 20 s for a single unit); the app then loads its model, which took 40 s on
#: a busy 2-core machine.
#: Past this the suite stops waiting for systemd and redeploys.
SELF_HEAL_SECONDS = 120.0

#: ssh's own exit status when the session dies under it — expected when the fault kills it.
SSH_SESSION_LOST = 255

#: What a fault on one worker promises: the other workers answer right while it lasts, so users
#: see no outage and nothing needs repairing (systemd replaces the worker meanwhile).
OTHERS_SERVE = Recovery(redeploy=False, while_active=WhileActive(local_serves=True))


def _require_workers(target: Target, count: int = 2) -> tuple[str, ...]:
    workers = target.service.workers
    if len(workers) < count:
        raise NotApplicable(
            f"needs {count} workers on the app's socket, {target.name} has {workers}"
        )
    return workers


@dataclass
class SignalApp(Fault):
    """A signal to the app's serving processes: every one, or worker `worker` alone.

    + worker: None hits every serving process (each worker's MainPID, or the single unit's),
      which systemd must bring back; N hits worker N alone (the ``-worker`` fault): the others
      serve meanwhile, and the fault ends only once systemd has replaced it (`undo`), so the
      client load runs through the replacement too.
    """

    worker: int | None = None
    #: the victim's unit and pid, from `inject` to `undo` (one-worker faults only)
    victim: tuple[str, str] | None = field(default=None, init=False, repr=False, compare=False)

    signal: ClassVar[str]
    base_name: ClassVar[str]
    all_breaks: ClassVar[str]
    one_breaks: ClassVar[str]

    def __post_init__(self) -> None:
        if self.worker is None:
            self.name = self.base_name
            self.breaks = self.all_breaks
            self.recovery = Recovery(self_heal_seconds=SELF_HEAL_SECONDS)
        else:
            self.name = f"{self.base_name}-worker"
            self.breaks = self.one_breaks.format(n=self.worker)
            self.recovery = OTHERS_SERVE
            self.lossless = True

    def not_applicable(self, target: Target) -> str | None:
        if self.worker is not None:
            try:
                _require_workers(target, max(2, self.worker))
            except NotApplicable as missing:
                return str(missing)
        return super().not_applicable(target)

    def inject(self, target: Target) -> None:
        service = target.service
        if self.worker is None:
            target.guest.sh(service.signal_main(self.signal))
            return
        unit = _require_workers(target, max(2, self.worker))[self.worker - 1]
        pid = target.guest.sh(service.signal_main(self.signal, (unit,))).strip()
        self.victim = (unit, pid)

    def undo(self, target: Target) -> None:
        """One worker: wait until systemd has replaced it by a new process that said READY=1.

        Raises FaultError when that does not happen within SELF_HEAL_SECONDS (and continues a
        stopped victim, so the host is not left hung).
        """
        if self.victim is None:
            return
        unit, pid = self.victim
        self.victim = None
        service = target.service
        main_pid = service.systemctl("show", "-p", "MainPID", "--value", unit)
        active = service.systemctl("is-active", unit)
        replaced = f'[ "$({main_pid})" != {shlex.quote(pid)} ] && [ "$({active})" = active ]'
        try:
            poll_guest(target.guest, replaced, SELF_HEAL_SECONDS, interval=0.5)
        except CommandFailed:
            target.guest.sh(f"{service.kill('CONT')} {shlex.quote(pid)} 2>/dev/null || true")
            raise FaultError(
                f"systemd did not replace {unit} (pid {pid}, SIG{self.signal})"
                f" within {SELF_HEAL_SECONDS:g}s"
            ) from None


@dataclass
class KillApp(SignalApp):
    signal = "KILL"
    base_name = "sigkill"
    all_breaks = "SIGKILL to every process serving the app (each worker's MainPID): no cleanup"
    one_breaks = (
        "SIGKILL to worker {n}'s MainPID: the other workers keep serving the shared socket until"
        " systemd has restarted it"
    )


@dataclass
class HangApp(SignalApp):
    signal = "STOP"
    base_name = "sigstop"
    all_breaks = (
        "SIGSTOP to every process serving the app (each worker's MainPID): they exist, hold the"
        " socket, and answer nothing"
    )
    one_breaks = (
        "SIGSTOP to worker {n}'s MainPID: it holds its accepted requests and answers nothing; the"
        " other workers serve until systemd's watchdog has killed and replaced it"
    )

    def undo(self, target: Target) -> None:
        """Every process: continue the stopped ones that are still the units' main processes.

        One worker: nothing is continued; systemd's watchdog must replace it (SignalApp.undo).
        """
        if self.worker is None:
            target.guest.sh(f"{target.service.signal_main('CONT')} || true")
        else:
            super().undo(target)


class StopService(Fault):
    name = "service-stop"
    breaks = (
        "`systemctl stop` of the app (its target: every worker), which Restart=always does not"
        " undo; systemd's socket stays and starts the whole app again on the next connection"
    )
    # Worker 1 starts on the first connection and wants the target, which brings every other
    # worker back (operations/workers.py): no deploy is needed, and the next changes nothing.
    recovery = Recovery(self_heal_seconds=SELF_HEAL_SECONDS)

    def inject(self, target: Target) -> None:
        target.guest.sh(target.service.systemctl("stop", target.service.unit))


class KillUser(Fault):
    name = "kill-user"
    breaks = (
        "SIGKILL to every process of the deploy user inside the guest, user@UID.service included:"
        " lingering user services stay down until the user manager is started again"
    )
    recovery = Recovery()

    def inject(self, target: Target) -> None:
        try:
            target.guest.sh('sudo -n pkill -KILL -u "$(id -u)"')
        except CommandFailed as error:
            if error.returncode != SSH_SESSION_LOST:
                raise


class OomWorker(Fault):
    name = "oom-worker"
    breaks = (
        "worker 1 OOM-killed by the kernel (its MemoryMax lowered below its use, then restored)"
    )
    recovery = OTHERS_SERVE
    lossless = True

    def not_applicable(self, target: Target) -> str | None:
        try:
            unit = _require_workers(target)[0]
        except NotApplicable as missing:
            return str(missing)
        group = target.service.systemctl("show", "-p", "ControlGroup", "--value", unit)
        try:
            target.guest.sh(f'test -e "/sys/fs/cgroup$({group})/memory.max"')
        except CommandFailed:
            return f"{target.name} gives {unit} no memory controller (MemoryMax has no effect)"
        return super().not_applicable(target)

    def inject(self, target: Target) -> None:
        unit = _require_workers(target)[0]
        service = target.service
        limit = service.systemctl("set-property", "--runtime", unit)
        result = service.systemctl("show", "-p", "Result", "--value", unit)
        restarts = service.systemctl("show", "-p", "NRestarts", "--value", unit)
        before = target.guest.sh(restarts).strip()
        # No swap either: with swap to spare, the kernel pages the model out and the worker
        # crawls on instead of being killed.
        target.guest.sh(f"{limit} MemoryMax=32M MemorySwapMax=0")
        try:
            # The kill is the fault; once systemd saw it (Result=oom-kill or a restart counted),
            # the limit goes, so the restarted worker can load its model again.
            oom = f'[ "$({result})" = oom-kill ] || [ "$({restarts})" != {shlex.quote(before)} ]'
            poll_guest(target.guest, oom, 30)
        finally:
            target.guest.sh(f"{limit} MemoryMax=infinity MemorySwapMax=infinity")


class RollingRestart(Fault):
    name = "rolling-restart"
    breaks = "every worker restarted in turn, the next after the previous said READY=1"
    recovery = OTHERS_SERVE
    lossless = True
    #: the client load counts from the start of the injection: the roll is the fault
    load_counts_from_injection = True

    def inject(self, target: Target) -> None:
        # One command per worker: each returns at that worker's READY=1 (model and UI), which
        # took a minute at load 25, so the whole roll outlasted one command's time limit.
        for worker in _require_workers(target, 1):
            target.guest.sh(target.service.systemctl("restart", worker))


class ReleaseSwitch(RollingRestart):
    name = "release-switch"
    breaks = "`current` re-pointed (same release) and the workers restarted in turn, as a deploy"

    def inject(self, target: Target) -> None:
        base = shlex.quote(target.paths.root)
        target.guest.sh(
            f"ln -sfn $(readlink {base}/current) {base}/.current.new"
            f" && mv -T {base}/.current.new {base}/current"
        )
        super().inject(target)


class RollbackRelease(RollingRestart):
    name = "rollback"
    breaks = "`current` and `previous` swapped and the workers restarted in turn (undone after)"
    needs_previous_release = True

    def inject(self, target: Target) -> None:
        self._swap(target)

    def undo(self, target: Target) -> None:
        self._swap(target)

    def _swap(self, target: Target) -> None:
        base = shlex.quote(target.paths.root)
        target.guest.sh(
            f"cur=$(readlink {base}/current) && prev=$(readlink {base}/previous)"
            f' && ln -sfn "$prev" {base}/.current.new && mv -T {base}/.current.new {base}/current'
            f' && ln -sfn "$cur" {base}/.previous.new && mv -T {base}/.previous.new {base}/previous'
        )
        super().inject(target)


class RestartService(Fault):
    name = "service-restart"
    breaks = "`systemctl restart` of the whole app: every worker at once, the socket stays"
    # systemctl returns once every worker said READY=1; connections meanwhile wait in the
    # socket's backlog, so by the time the fault "took effect" the app answers again.
    recovery = OTHERS_SERVE
    load_counts_from_injection = True

    def inject(self, target: Target) -> None:
        target.guest.sh(target.service.systemctl("restart", target.service.unit))
