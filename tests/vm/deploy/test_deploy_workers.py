"""Workers on a socket systemd holds: what a user sees during release switches and restarts.

One deployed VM; a client load (a new connection per request, label checked) runs through each
switch. The tests run in file order: the upgrade from the old single unit comes last, because it
puts the host back into the layout of earlier versions first.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from deploy_helpers import Deployed, classify, model_variant, served_model_version

from mlopsdeploy.deployment.api import deploy, rollback
from mlopsdeploy.deployment.host_commands import systemctl
from mlopsdeploy.deployment.operations import service, workers
from mlopsdeploy.resilience.load import ClientLoad

pytestmark = [pytest.mark.vm, pytest.mark.xdist_group("deploy-workers")]

CANARIES = ["I am so happy today!", "This is the worst day ever."]
CTL = systemctl("user")


def test_two_workers_share_the_socket_systemd_holds(deployed: Deployed) -> None:
    listeners = deployed.sh(f"ss -Hltnp 'sport = :{deployed.cfg.app_port}'")
    assert '"systemd"' in listeners and listeners.count('"python"') == 2
    assert len(set(deployed.pids())) == 2
    assert classify(deployed.cfg, CANARIES) == ["POSITIVE", "NEGATIVE"]


def test_release_switch_and_rollback_under_load_lose_no_request(
    deployed: Deployed, tmp_path: Path
) -> None:
    first = served_model_version(deployed.cfg)
    newer = model_variant(deployed.model_dir, tmp_path / "newer", first + "-next")
    before = deployed.pids()
    with ClientLoad(deployed.cfg.url) as load:
        switched = deploy([deployed.cfg], deployed.control.options(newer)).hosts[0]
    assert switched.ok, switched.error
    assert served_model_version(deployed.cfg) == first + "-next"
    assert not set(before) & set(deployed.pids())  # every worker was restarted
    assert load.report().failures == {}
    with ClientLoad(deployed.cfg.url) as load:
        back = rollback([deployed.cfg], deployed.control.options(deployed.model_dir)).hosts[0]
    assert back.ok, back.error
    assert served_model_version(deployed.cfg) == first
    assert load.report().failures == {}


def test_one_worker_restart_keeps_connections_waiting_instead_of_refused(
    deployed: Deployed,
) -> None:
    one = replace(deployed.cfg, workers=1)
    result = deploy([one], deployed.control.options(deployed.model_dir)).hosts[0]
    assert result.ok, result.error
    assert deployed.sh(f"{CTL} is-active {workers.worker_unit(2)} || true").strip() == "inactive"
    # 5/s: every request of a start that takes a minute on a busy machine stays in flight.
    with ClientLoad(one.url, rate=5) as load:
        deployed.sh(f"{CTL} restart {workers.worker_unit(1)}")
    report = load.report()
    assert report.failures == {}  # neither refused nor reset: they waited in the backlog
    assert report.not_sent == 0
    assert deploy([deployed.cfg], deployed.control.options(deployed.model_dir)).hosts[0].ok


def test_old_single_unit_moves_to_the_workers_in_one_deploy(deployed: Deployed) -> None:
    cfg = deployed.cfg
    legacy = f"{service.unit_dir(cfg)}/{service.UNIT}"
    text = service.render_unit(cfg).replace("'", "'\\''")
    deployed.sh(f"{CTL} disable --now {workers.TARGET} {workers.SOCKET} '{workers.PREFIX}@*'")
    deployed.sh(f"printf '%s' '{text}' > {legacy} && {CTL} daemon-reload")
    deployed.sh(f"{CTL} enable --now {service.UNIT}")
    assert deployed.sh(f"{CTL} is-active {service.UNIT}").strip() == "active"
    moved = deploy([cfg], deployed.control.options(deployed.model_dir)).hosts[0]
    assert moved.ok, moved.error
    assert deployed.sh(f"test -e {legacy} || echo gone").strip() == "gone"
    assert deployed.sh(f"{CTL} is-active {workers.SOCKET} {workers.TARGET}").split() == [
        "active",
        "active",
    ]
    assert len(set(deployed.pids())) == 2
    assert classify(cfg, CANARIES) == ["POSITIVE", "NEGATIVE"]
    again = deploy([cfg], deployed.control.options(deployed.model_dir)).hosts[0]
    assert again.ok and again.changed == []
