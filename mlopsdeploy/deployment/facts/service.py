"""Facts about the app's systemd unit: files in place, enabled, running, linger, its process."""

from __future__ import annotations

import shlex
from dataclasses import dataclass

from pyinfra.api import FactBase

from mlopsdeploy.deployment.host_commands import systemctl


class FileDigest(FactBase[str | None]):
    """sha256 and octal mode of ``path`` as ``"<sha256> <mode>"`` (None when missing).

    Used for the unit and the token file, so the deploy rewrites them only when their content or
    mode differs, and never has to read the token back.
    """

    def command(self, path: str) -> str:
        p = shlex.quote(path)
        return (
            f'if [ -f {p} ]; then echo "$(sha256sum < {p} | cut -c1-64) $(stat -c %a {p})"; '
            "else echo none; fi"
        )

    def process(self, output: list[str]) -> str | None:
        value = output[-1].strip()
        return None if value == "none" else value


@dataclass(frozen=True)
class UnitStatus:
    active: bool
    enabled: bool
    linger: bool


class ServiceStatus(FactBase[UnitStatus]):
    """Whether ``unit`` is active and enabled in the ``scope`` manager, and whether linger is on.

    Linger is what keeps a user unit running with nobody logged in and after a reboot.
    """

    def command(self, unit: str, scope: str) -> str:
        ctl = systemctl(scope)
        u = shlex.quote(unit)
        return (
            f"echo active $({ctl} is-active {u} 2>/dev/null); "
            f"echo enabled $({ctl} is-enabled {u} 2>/dev/null); "
            'if [ -e "/var/lib/systemd/linger/$(id -un)" ]; then echo linger yes; '
            "else echo linger no; fi"
        )

    @staticmethod
    def default() -> UnitStatus:
        return UnitStatus(active=False, enabled=False, linger=False)

    def process(self, output: list[str]) -> UnitStatus:
        values = dict([*line.split(), ""][:2] for line in output if line.strip())
        return UnitStatus(
            active=values.get("active") == "active",
            enabled=values.get("enabled") == "enabled",
            linger=values.get("linger") == "yes",
        )


@dataclass(frozen=True)
class ServiceState:
    """The app's systemd unit and its main process, as `systemctl show` and `ps` report them.

    `process_state` is the first letter of ps's STAT column: "T" means the process was stopped
    by a signal (SIGSTOP) - it exists, holds its port, and will never answer by itself.
    """

    load_state: str
    active_state: str
    sub_state: str
    main_pid: int = 0
    process_state: str = ""
    process_age_s: float | None = None
    rss_kb: int | None = None
    manager_down: bool = False
    """systemctl could not reach the service manager (user@UID.service killed or stopped)."""

    @property
    def missing(self) -> bool:
        """The unit file is gone (a wiped home, a deleted unit): only a deploy brings it back."""
        return self.load_state == "not-found"

    @property
    def restarting(self) -> bool:
        """systemd is already bringing the service back (Restart=always after a crash)."""
        return self.active_state in {"activating", "reloading"} or self.sub_state == "auto-restart"

    @property
    def stopped_process(self) -> bool:
        return self.main_pid > 0 and self.process_state == "T"

    @property
    def down(self) -> bool:
        """Not running and nobody is starting it: stopped by hand, or failed for good."""
        return self.active_state in {"inactive", "failed"} and not self.restarting

    def summary(self) -> str:
        if self.manager_down:
            return "service manager not running"
        text = f"{self.active_state}/{self.sub_state}"
        if self.main_pid:
            text += f", pid {self.main_pid} state {self.process_state or '?'}"
            if self.process_age_s is not None:
                text += f" up {self.process_age_s:.0f}s"
            if self.rss_kb is not None:
                text += f" rss {self.rss_kb // 1024} MB"
        return text

    @property
    def serving(self) -> bool:
        """Running and not stopped: a process that can take requests."""
        return self.active_state == "active" and not self.stopped_process


class UnitProcess(FactBase[ServiceState]):
    """`systemctl show` of `unit` plus `ps` of its MainPID, as a ServiceState."""

    def command(self, unit: str, scope: str) -> str:
        ctl = systemctl(scope)
        u = shlex.quote(unit)
        return (
            f"{ctl} show {u} -p LoadState -p ActiveState -p SubState -p MainPID "
            "|| echo ManagerDown=yes; "
            f"pid=$({ctl} show -p MainPID --value {u} 2>/dev/null); "
            'if [ "${pid:-0}" -gt 0 ]; then '
            'echo "process $(ps -o stat=,etimes=,rss= -p "$pid")"; fi'
        )

    def process(self, output: list[str]) -> ServiceState:
        values: dict[str, str] = {}
        process: list[str] = []
        for line in output:
            if line.startswith("process "):
                process = line.split()[1:]
            elif "=" in line:
                key, _, value = line.partition("=")
                values[key.strip()] = value.strip()
        return ServiceState(
            load_state=values.get("LoadState", "unknown"),
            active_state=values.get("ActiveState", "unknown"),
            sub_state=values.get("SubState", "unknown"),
            main_pid=int(values.get("MainPID") or 0),
            process_state=process[0][:1] if process else "",
            process_age_s=float(process[1]) if len(process) > 1 else None,
            rss_kb=int(process[2]) if len(process) > 2 else None,
            manager_down=values.get("ManagerDown") == "yes",
        )


@dataclass(frozen=True)
class WorkerLayout:
    """The app's socket, its workers and the old single unit, as the deploy must know them.

    `workers` maps each loaded worker instance ("1", "2", ...) to its ActiveState; an instance
    that never ran is simply absent. `legacy` is true while the single `mlopsdeploy.service` of
    earlier versions is still installed or running: it holds the port the socket needs.
    """

    socket_active: bool
    enabled: bool
    target_active: bool
    workers: dict[str, str]
    legacy: bool

    def active(self, instance: str) -> bool:
        return self.workers.get(instance) == "active"

    def up(self, instance: str) -> bool:
        """Running, or being (re)started by systemd already (after a crash): nothing to do."""
        return self.workers.get(instance) in {"active", "activating", "reloading"}


class WorkerUnits(FactBase[WorkerLayout]):
    """The socket's and target's state, every loaded ``<prefix>@N`` worker, the legacy unit.

    + prefix: unit name prefix, e.g. ``mlopsdeploy`` (socket ``mlopsdeploy.socket``, workers
      ``mlopsdeploy@N.service``, target ``mlopsdeploy.target``)
    + scope: ``user`` or ``system``
    + legacy_file: path of the single unit file of earlier versions
    """

    def command(self, prefix: str, scope: str, legacy_file: str) -> str:
        ctl = systemctl(scope)
        p = shlex.quote(prefix)
        return (
            f"echo socket $({ctl} is-active {p}.socket 2>/dev/null); "
            f"echo enabled $({ctl} is-enabled {p}.target 2>/dev/null); "
            f"echo target $({ctl} is-active {p}.target 2>/dev/null) "
            f"$({ctl} list-jobs --plain --no-legend {p}.target 2>/dev/null | awk '{{print $3}}'); "
            f"{ctl} list-units --all --plain --no-legend {shlex.quote(prefix + '@*.service')} "
            "2>/dev/null | while read -r unit load active rest; do "
            "echo worker $unit $active; done; "
            f"echo legacy $({ctl} is-active {p}.service 2>/dev/null) "
            f"$([ -e {shlex.quote(legacy_file)} ] && echo installed)"
        )

    @staticmethod
    def default() -> WorkerLayout:
        return WorkerLayout(
            socket_active=False, enabled=False, target_active=False, workers={}, legacy=False
        )

    def process(self, output: list[str]) -> WorkerLayout:
        fields = [line.split() for line in output if line.strip()]
        first = {words[0]: words[1:] for words in fields if words[0] != "worker"}
        workers = {
            words[1].partition("@")[2].removesuffix(".service"): words[2]
            for words in fields
            if words[0] == "worker" and len(words) == 3
        }
        legacy = first.get("legacy", [])
        target = first.get("target", [])
        return WorkerLayout(
            socket_active=first.get("socket") == ["active"],
            enabled=first.get("enabled") == ["enabled"],
            # A target waits for its workers (Wants= implies After=): after a reboot or the
            # socket's restart of a stopped app it reads "inactive" with a start job queued
            # until they are ready. That is a start under way, not one to make.
            target_active=bool({"active", "activating", "reloading", "start"} & set(target)),
            workers=workers,
            legacy="active" in legacy or "installed" in legacy or "activating" in legacy,
        )


class WorkerProcesses(FactBase[tuple[ServiceState, ...]]):
    """`UnitProcess` of every worker unit, in order: which are up, hung or gone, and their RSS."""

    def command(self, units: tuple[str, ...], scope: str) -> str:
        one = UnitProcess()
        return "; ".join(f"echo '== {unit}'; {one.command(unit, scope)}" for unit in units)

    def process(self, output: list[str]) -> tuple[ServiceState, ...]:
        blocks: list[list[str]] = []
        for line in output:
            if line.startswith("== "):
                blocks.append([])
            elif blocks:
                blocks[-1].append(line)
        return tuple(UnitProcess().process(block) for block in blocks)
