"""The watchdog: detect a dead, hung or wiped host from outside and recover it, without storms.

`mlopsdeploy watch` probes every host of the inventory every few seconds (readiness with correct
labels), diagnoses failures from outside (SSH banner, host key, login key, service and process
state), climbs an escalation ladder (wait for systemd → restart → redeploy → re-provision) under
guards (a per-host lock across processes, cooldown, exponential backoff, a repair limit per
hour), keeps an incident journal and sends webhook alerts. See docs/watchdog.md.
"""

from mlopsdeploy.watchdog.diagnosis import Diagnosis, HostKey, LoginKey, ServiceState
from mlopsdeploy.watchdog.journal import Incident, Journal, Step, summarise
from mlopsdeploy.watchdog.ladder import HostKeyPolicy, Rung
from mlopsdeploy.watchdog.watcher import (
    HostWatcher,
    ProbeOutcome,
    RepairResult,
    WatchSettings,
    run_watchers,
)

__all__ = [
    "Diagnosis",
    "HostKey",
    "HostKeyPolicy",
    "HostWatcher",
    "Incident",
    "Journal",
    "LoginKey",
    "ProbeOutcome",
    "RepairResult",
    "Rung",
    "ServiceState",
    "Step",
    "WatchSettings",
    "run_watchers",
    "summarise",
]
