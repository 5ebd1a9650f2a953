"""Faults on the app's processes: killed, hung, stopped, or the whole user session gone.

Every signal goes to the pid systemd records as a unit's MainPID, looked up inside the guest:
never a name or pattern, which on an nspawn testbed could hit the control machine's processes.
`sigkill`/`sigstop` hit every serving process (all workers at once, or the single unit); the
`-worker` faults hit worker 1 alone, which the other workers must cover without a user noticing.
The rolling faults (release switch, rollback, restart) are what the deploy itself does to a
serving host, run under the suite's client load.
"""

from __future__ import annotations

import shlex

from mlopsdeploy.faults.base import (
    CommandFailed,
    Fault,
    NotApplicable,
    Recovery,
    Target,
    WhileActive,
    poll_guest,
)

#: systemd restarts a dead app after its restart delay (a hung one after its watchdog timeout,
#: 20 s); the app then loads torch and its model, which took 40 s on a busy 2-core machine.
#: Past this the suite stops waiting for systemd and redeploys.
SELF_HEAL_SECONDS = 120.0

#: ssh's own exit status when the session dies under it — expected when the fault kills it.
SSH_SESSION_LOST = 255


class KillApp(Fault):
    name = "sigkill"
    breaks = "SIGKILL to every process serving the app (each worker's MainPID): no cleanup"
    recovery = Recovery(self_heal_seconds=SELF_HEAL_SECONDS)

    def inject(self, target: Target) -> None:
        target.guest.sh(target.service.signal_main("KILL"))


class HangApp(Fault):
    name = "sigstop"
    breaks = (
        "SIGSTOP to every process serving the app (each worker's MainPID): they exist, hold the"
        " socket, and answer nothing"
    )
    recovery = Recovery(self_heal_seconds=SELF_HEAL_SECONDS)

    def inject(self, target: Target) -> None:
        target.guest.sh(target.service.signal_main("STOP"))

    def undo(self, target: Target) -> None:
        """Continue the stopped process if it is still the unit's main process."""
        target.guest.sh(f"{target.service.signal_main('CONT')} || true")


class StopService(Fault):
    name = "service-stop"
    breaks = (
        "`systemctl stop` of the app (its target: every worker): a deliberate stop that"
        " Restart=always does not undo"
    )
    recovery = Recovery()

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


#: What the worker faults promise: the other workers answer right while it lasts, so users see no
#: outage and nothing needs repairing (systemd replaces the worker meanwhile).
OTHERS_SERVE = Recovery(redeploy=False, while_active=WhileActive(local_serves=True))


class WorkerFault(Fault):
    """A fault on worker 1 that the other workers must cover: needs at least two."""

    recovery = OTHERS_SERVE

    def not_applicable(self, target: Target) -> str | None:
        if len(target.service.workers) < 2:
            return (
                f"needs 2 workers on the app's socket, {target.name} has {target.service.workers}"
            )
        return super().not_applicable(target)


def _require_workers(target: Target, count: int = 2) -> tuple[str, ...]:
    workers = target.service.workers
    if len(workers) < count:
        raise NotApplicable(
            f"needs {count} workers on the app's socket, {target.name} has {workers}"
        )
    return workers


#: The final run of session 2 saw the probe fail right after a SIGKILL or SIGSTOP of worker 1, so
#: "no outage" is not promised for these two until that is explained (issue 11): the suite asserts
#: recovery with correct labels, and the client load reports every failed request and the gap.
WORKER_SELF_HEALS = Recovery(self_heal_seconds=SELF_HEAL_SECONDS)


class KillWorker(WorkerFault):
    name = "sigkill-worker"
    breaks = "SIGKILL to worker 1's MainPID: the other workers keep serving the shared socket"
    recovery = WORKER_SELF_HEALS

    def inject(self, target: Target) -> None:
        _require_workers(target)
        target.guest.sh(target.service.signal_worker("KILL"))


class HangWorker(WorkerFault):
    name = "sigstop-worker"
    breaks = "SIGSTOP to worker 1's MainPID: it holds the socket and its accepted requests"
    recovery = WORKER_SELF_HEALS

    def inject(self, target: Target) -> None:
        _require_workers(target)
        target.guest.sh(target.service.signal_worker("STOP"))

    def undo(self, target: Target) -> None:
        target.guest.sh(f"{target.service.signal_worker('CONT')} || true")


class OomWorker(WorkerFault):
    name = "oom-worker"
    breaks = (
        "worker 1 OOM-killed by the kernel (its MemoryMax lowered below its use, then restored)"
    )
    recovery = OTHERS_SERVE

    def not_applicable(self, target: Target) -> str | None:
        unit = target.service.processes[0]
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
        target.guest.sh(f"{limit} MemoryMax=32M")
        try:
            # The kill is the fault; once systemd saw it (Result=oom-kill or a restart counted),
            # the limit goes, so the restarted worker can load its model again.
            oom = f'[ "$({result})" = oom-kill ] || [ "$({restarts})" != {shlex.quote(before)} ]'
            poll_guest(target.guest, oom, 30)
        finally:
            target.guest.sh(f"{limit} MemoryMax=infinity")


class RollingRestart(Fault):
    name = "rolling-restart"
    breaks = "every worker restarted in turn, the next after the previous said READY=1"
    recovery = OTHERS_SERVE
    #: the client load counts from the start of the injection: the roll is the fault
    load_counts_from_injection = True

    def inject(self, target: Target) -> None:
        workers = _require_workers(target, 1)
        target.guest.sh(" && ".join(target.service.systemctl("restart", w) for w in workers))


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

    def not_applicable(self, target: Target) -> str | None:
        base = shlex.quote(target.paths.root)
        if not target.guest.sh(f"readlink {base}/previous || true").strip():
            return f"{target.name} has no previous release to roll back to"
        return super().not_applicable(target)

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
