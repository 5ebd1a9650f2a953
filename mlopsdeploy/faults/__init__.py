"""The fault catalogue: every way the resilience suite (and the watchdog's tests) break a host.

    >>> from mlopsdeploy.faults import by_name
    >>> fault = by_name("sigkill")
    >>> fault.recovery.self_heal_seconds > 0   # systemd is expected to heal it alone
    True

`CATALOGUE` is ordered the way a suite sharing one deployed VM should run it: faults systemd
heals first, then those the deploy repairs, then the ones that take the whole VM away.
"""

from __future__ import annotations

from mlopsdeploy.faults.base import (
    ApiSwitch,
    AppPaths,
    CommandFailed,
    Fault,
    FaultError,
    Guest,
    Machine,
    NotApplicable,
    Recovery,
    Service,
    Target,
    WhileActive,
)
from mlopsdeploy.faults.deploy import (
    ChangePackageFile,
    ConcurrentDeploy,
    DamageAppCode,
    DeleteAppDir,
    DeleteChecksums,
    InterruptedDeploy,
)
from mlopsdeploy.faults.files import CorruptVenv, DamageModel, FillDisk
from mlopsdeploy.faults.machine import CutNetwork, Reboot, WipeHome, WipeVM
from mlopsdeploy.faults.network import ApiOutage, TakePort
from mlopsdeploy.faults.process import (
    HangApp,
    KillApp,
    KillUser,
    OomWorker,
    ReleaseSwitch,
    RestartService,
    RollbackRelease,
    RollingRestart,
    SignalApp,
    StopService,
)

CATALOGUE: tuple[Fault, ...] = (
    KillApp(worker=1),
    HangApp(worker=1),
    OomWorker(),
    RollingRestart(),
    ReleaseSwitch(),
    RestartService(),
    KillApp(),
    HangApp(),
    Reboot(),
    ApiOutage("down"),
    ApiOutage("slow"),
    ApiOutage("unauthorized"),
    ApiOutage("overloaded"),
    StopService(),
    KillUser(),
    CorruptVenv(),
    DamageModel(),
    DamageModel(delete=True),
    DamageAppCode(),
    DeleteAppDir(),
    DeleteChecksums(),
    ChangePackageFile(),
    ConcurrentDeploy(),
    InterruptedDeploy(),
    TakePort(),
    FillDisk(),
    CutNetwork(),
    RollbackRelease(),  # late: a host an earlier experiment gave a new release needs none
    WipeHome(),
    WipeVM(),
)


def by_name(name: str) -> Fault:
    """The catalogue entry called `name`; KeyError lists the known names."""
    for fault in CATALOGUE:
        if fault.name == name:
            return fault
    raise KeyError(f"no fault {name!r}; known: {', '.join(f.name for f in CATALOGUE)}")


__all__ = [
    "CATALOGUE",
    "ApiOutage",
    "ApiSwitch",
    "AppPaths",
    "ChangePackageFile",
    "CommandFailed",
    "ConcurrentDeploy",
    "CorruptVenv",
    "CutNetwork",
    "DamageAppCode",
    "DamageModel",
    "DeleteAppDir",
    "DeleteChecksums",
    "Fault",
    "FaultError",
    "FillDisk",
    "Guest",
    "HangApp",
    "InterruptedDeploy",
    "KillApp",
    "KillUser",
    "Machine",
    "NotApplicable",
    "OomWorker",
    "Reboot",
    "Recovery",
    "ReleaseSwitch",
    "RestartService",
    "RollbackRelease",
    "RollingRestart",
    "Service",
    "SignalApp",
    "StopService",
    "TakePort",
    "Target",
    "WhileActive",
    "WipeHome",
    "WipeVM",
    "by_name",
]
