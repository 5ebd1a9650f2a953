"""A fact: the app unit's systemd states and its main process's ps state and age.

The deploy's ServiceStatus fact answers "active and enabled?"; the watchdog needs finer grain to
choose between waiting and repairing: auto-restart (systemd is on it), a main process in state T
(SIGSTOP: frozen for good), or a process that started after the fault (starting up). It is a
pyinfra fact so a deploy could use it too; the watchdog runs its command over its own SSH
connection, because it already holds one from the diagnosis.
"""

from __future__ import annotations

import shlex

from pyinfra.api import FactBase

from mlopsdeploy.watchdog.diagnosis import ServiceState


class UnitProcess(FactBase[ServiceState]):
    """`systemctl show` of `unit` plus `ps` of its MainPID, as a ServiceState."""

    def command(self, unit: str, systemctl: str) -> str:
        """+ systemctl: the systemctl invocation for the unit's manager (user or system)."""
        u = shlex.quote(unit)
        return (
            f"{systemctl} show {u} -p LoadState -p ActiveState -p SubState -p MainPID "
            "|| echo ManagerDown=yes; "
            f"pid=$({systemctl} show -p MainPID --value {u} 2>/dev/null); "
            'if [ "${pid:-0}" -gt 0 ]; then echo "process $(ps -o stat=,etimes= -p "$pid")"; fi'
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
            manager_down=values.get("ManagerDown") == "yes",
        )
