"""The watchdog, running in the background as users run it, against a deployed test VM.

Each test breaks the VM with a fault from the resilience catalogue and waits (with a deadline)
for the watchdog's journal to close the incident, then checks what it did and that the app
answers with correct labels. The tests share one deployed VM and run in file order, each
leaving it healthy; the VM wipe comes last.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from watched_vm import Receiver, WatchedHost

from mlopsdeploy.deployment.api import deploy
from mlopsdeploy.deployment.results import DeployOptions
from mlopsdeploy.faults import (
    CutNetwork,
    DamageModel,
    Fault,
    HangApp,
    KillApp,
    WipeHome,
    WipeVM,
)
from mlopsdeploy.watchdog.background import BackgroundWatchdog
from mlopsdeploy.watchdog.journal import Incident

pytestmark = [pytest.mark.vm, pytest.mark.xdist_group("watchdog-vm")]

OPTIONS = ["--interval", "1", "--cooldown", "5"]
STARTUP_S = 180.0
RESTART_S = 180.0
REDEPLOY_S = 420.0
NETWORK_CUT_S = 15.0


def start(host: WatchedHost, state: Path, *options: str, **env: str) -> BackgroundWatchdog:
    environment = {
        "MLOPSDEPLOY_CONFIG": str(host.hosts_file),
        "MLOPSDEPLOY_MODEL_DIR": str(host.model_dir),
    }
    return BackgroundWatchdog(state, [*OPTIONS, *options], {**environment, **env})


def recovered(incident: Incident) -> bool:
    return incident.state == "recovered"


def break_and_wait(host: WatchedHost, tmp_path: Path, fault: Fault, timeout_s: float) -> Incident:
    with start(host, tmp_path / "state") as watchdog:
        watchdog.wait_log(f"{host.cfg.name} healthy", STARTUP_S)
        injected = time.time()
        fault.inject(host.target)
        incident = watchdog.wait_incident(injected, recovered, timeout_s)
    assert host.labels_correct() is None
    return incident


def actions(incident: Incident) -> list[tuple[str, str]]:
    return [(step.action, step.result) for step in incident.actions]


def test_sigkill_is_left_to_systemd(watched_host: WatchedHost, tmp_path: Path) -> None:
    incident = break_and_wait(watched_host, tmp_path, KillApp(), RESTART_S)
    assert actions(incident) == []
    assert any(step.result == "no action needed" for step in incident.steps)


def test_sigstopped_app_is_restarted(watched_host: WatchedHost, tmp_path: Path) -> None:
    incident = break_and_wait(watched_host, tmp_path, HangApp(), RESTART_S)
    assert actions(incident) == [("restart", "ok")]
    assert "state T" in incident.actions[0].reason


def test_network_cut_is_waited_out_without_repairs(
    watched_host: WatchedHost, tmp_path: Path
) -> None:
    fault = CutNetwork()
    with start(watched_host, tmp_path / "state") as watchdog:
        watchdog.wait_log(f"{watched_host.cfg.name} healthy", STARTUP_S)
        injected = time.time()
        fault.inject(watched_host.target)
        try:
            watchdog.wait_incident(
                injected, lambda i: any("unreachable" in s.reason for s in i.steps), RESTART_S
            )
            time.sleep(NETWORK_CUT_S)  # the partition lasts a while: no repair may happen in it
        finally:
            fault.undo(watched_host.target)
        incident = watchdog.wait_incident(injected, recovered, RESTART_S)
    assert actions(incident) == []
    assert incident.recovered_at is not None
    assert incident.recovered_at - incident.detected_at >= NETWORK_CUT_S
    assert watched_host.labels_correct() is None


def test_home_wipe_is_redeployed(watched_host: WatchedHost, tmp_path: Path) -> None:
    incident = break_and_wait(watched_host, tmp_path, WipeHome(), REDEPLOY_S)
    assert actions(incident) == [("redeploy", "ok")]
    assert "login with default key" in incident.actions[0].reason
    assert watched_host.default_key_rejected()


def test_unrepairable_model_makes_it_give_up_loudly_and_keep_probing(
    watched_host: WatchedHost, tmp_path: Path, webhook: Receiver, mislabelling_model: Path
) -> None:
    """Damaged weights on the host, and the only model the watchdog can deploy mislabels: the
    restart and the redeploy fail, it gives up at its limit, and still notices the recovery."""
    host = watched_host
    # The workers crash-loop on the damaged weights, so each rung first waits out the heal grace
    # for systemd: 5 s is plenty to see that it cannot heal them (20 s cost a minute).
    limits = ["--max-actions-per-hour", "2", "--heal-grace", "5", "--cooldown", "2"]
    env = {"MLOPSDEPLOY_MODEL_DIR": str(mislabelling_model), "MLOPSDEPLOY_WEBHOOK_URL": webhook.url}
    with start(host, tmp_path / "state", *limits, **env) as watchdog:
        watchdog.wait_log(f"{host.cfg.name} healthy", STARTUP_S)
        injected = time.time()
        DamageModel().inject(host.target)
        incident = watchdog.wait_incident(injected, lambda i: i.state == "gave_up", REDEPLOY_S)
        assert [step.action for step in incident.actions] == ["restart", "redeploy"]
        assert "canary" in incident.actions[-1].result
        assert incident.steps[-1].action == "give_up"
        assert "GIVING UP on" in watchdog.log()
        assert webhook.events(host.cfg.name) == ["detected", "gave_up"]
        assert "test-secret" not in watchdog.log()

        repaired = deploy([host.cfg], DeployOptions(model_dir=host.model_dir)).hosts[0]
        assert repaired.ok, repaired.error
        incident = watchdog.wait_incident(injected, recovered, RESTART_S)
    assert len(incident.actions) == 2
    assert webhook.events(host.cfg.name) == ["detected", "gave_up", "recovered"]
    assert host.labels_correct() is None


def test_vm_wipe_is_reprovisioned(watched_host: WatchedHost, tmp_path: Path) -> None:
    incident = break_and_wait(watched_host, tmp_path, WipeVM(), REDEPLOY_S)
    ((action, result),) = actions(incident)
    assert action == "reprovision"
    # Nobody confirmed the new key: the app is back, the token stayed home, the journal says why.
    assert result.startswith("ok; secrets withheld: the new host key SHA256:")
    assert result.endswith(f"run: mlopsdeploy trust {watched_host.cfg.name}")
    assert "host key changed" in incident.actions[0].reason
    assert watched_host.default_key_rejected()
