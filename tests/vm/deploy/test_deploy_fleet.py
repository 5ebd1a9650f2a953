"""Three app VMs deployed as a fleet: one pyinfra run across them, a no-op run, the status
table, and a rolling release that stops at a failed batch.

The tests share the three deployed VMs and run in file order on one xdist worker: each later
test starts from the state the earlier ones leave, as a user's successive deploys do.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from deploy_helpers import Control, classify, model_variant, remote, served_model_version

from mlopsdeploy.config import HostConfig
from mlopsdeploy.deployment import status
from mlopsdeploy.deployment.api import deploy
from mlopsdeploy.deployment.results import DeployResult
from mlopsdeploy.testbed import TestVM
from mlopsdeploy.testbed.image import Image
from mlopsdeploy.testbed.pytest_plugin import VMFactory

pytestmark = [pytest.mark.vm, pytest.mark.xdist_group("deploy-fleet")]

SENTENCES = {
    "I am so happy today!": "POSITIVE",
    "This is the worst day ever.": "NEGATIVE",
}
CURRENT = "readlink ~/mlopsdeploy/current"


@dataclass
class Fleet:
    vms: list[TestVM]
    cfgs: list[HostConfig]
    control: Control
    model_dir: Path
    first: DeployResult


@pytest.fixture(scope="module")
def fleet(testbed_image: Image, control: Control, sentiment_model_dir: Path) -> Iterator[Fleet]:
    factory = VMFactory(testbed_image)
    try:
        vms = [factory() for _ in range(3)]
        cfgs = [control.host(vm, workers=1) for vm in vms]
        first = deploy(cfgs, control.options(sentiment_model_dir))
        yield Fleet(vms, cfgs, control, sentiment_model_dir, first)
    finally:
        factory.destroy_all()


def test_cold_deploy_of_three_hosts_in_one_run(fleet: Fleet) -> None:
    assert [h.host for h in fleet.first.hosts] == [cfg.name for cfg in fleet.cfgs]
    for host in fleet.first.hosts:
        assert host.ok, host.error
        assert "mlopsdeploy | Runtime venv" in host.changed
    # One pyinfra run: every host went through the same operations in the same run.
    steps = {tuple(step.name for step in host.steps) for host in fleet.first.hosts}
    assert len(steps) == 1
    assert len({host.timings["ops"] for host in fleet.first.hosts}) == 1
    for cfg in fleet.cfgs:
        assert classify(cfg, list(SENTENCES)) == list(SENTENCES.values())


def test_no_op_across_three_hosts_changes_nothing(fleet: Fleet) -> None:
    again = deploy(fleet.cfgs, fleet.control.options(fleet.model_dir))
    assert again.ok, [h.error for h in again.hosts]
    assert [h.changed for h in again.hosts] == [[], [], []]
    assert again.retry == [] and again.stopped is None


def test_status_table_shows_what_each_host_serves(fleet: Fleet) -> None:
    rows = status.collect(fleet.cfgs)
    release = fleet.first.hosts[0].release
    version = fleet.first.hosts[0].model_version
    for row in rows:
        assert (row.release, row.model_version, row.readyz) == (release, version, "200 ready")
        assert (row.workers_ready, row.workers, row.error) == (1, 1, None)
        assert row.last_deploy is not None and row.last_deploy.endswith("Z")
    assert status.healthy(rows)
    table = status.as_table(rows).splitlines()
    assert table[0].split()[:3] == ["HOST", "RELEASE", "MODEL"]
    assert [line.split()[0] for line in table[1:]] == [cfg.name for cfg in fleet.cfgs]


def test_a_failed_batch_stops_the_rollout_and_the_fleet_keeps_the_old_release(
    fleet: Fleet, tmp_path: Path
) -> None:
    """Batches [2, 1]: the second host of the first batch refuses the release (its candidate
    port is taken), so the rollout stops, the first host is put back, the third never starts."""
    first, refusing, untouched = fleet.cfgs
    version = served_model_version(first)
    current = [remote(vm, fleet.control, CURRENT) for vm in fleet.vms]
    port = refusing.probe_port
    remote(
        fleet.vms[1],
        fleet.control,
        f"setsid nohup python3 -m http.server {port} --bind 127.0.0.1 >/dev/null 2>&1 </dev/null &"
        f" for i in $(seq 100); do ss -ltn | grep -q ':{port} ' && exit 0; sleep 0.1; done; exit 1",
    )
    newer = model_variant(fleet.model_dir, tmp_path / "newer", version + "-next")
    options = fleet.control.options(newer, batches=(2, 1), rollback_failed=True)
    result = deploy(fleet.cfgs, options)
    outcomes = {h.host: h.outcome for h in result.hosts}
    assert outcomes == {
        first.name: "rolled back",
        refusing.name: "failed",
        untouched.name: "not started",
    }
    failed = result.hosts[1]
    assert str(failed.error).startswith(f"{refusing.name}: port {port} (candidate port) is")
    assert result.stopped is not None and refusing.name in result.stopped
    assert result.retry == [cfg.name for cfg in fleet.cfgs]
    for vm, cfg, before in zip(fleet.vms, fleet.cfgs, current, strict=True):
        assert remote(vm, fleet.control, CURRENT) == before
        assert served_model_version(cfg) == version
        assert classify(cfg, list(SENTENCES)) == list(SENTENCES.values())
