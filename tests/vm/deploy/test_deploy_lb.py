"""HAProxy on a VM of its own in front of two app VMs: what users see through it while a release
rolls through the hosts, and while one host is wiped (no 5xx, every label right); and the pyinfra
CLI path over the same inventory, groups included, changing nothing after the library's deploy.

The module deploys once (the LB hooks, as ``mlopsdeploy deploy`` runs them for an inventory with
an ``lb`` group) and its tests run in file order on one xdist worker, each starting from what the
one before left. Two app hosts show all that is checked here (one drained while the other serves,
one dead while the other serves); a third would add a cold deploy to CI and check nothing more.
The LB VM runs the control machine's Debian release, whose apt fetches HAProxy's .deb files.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from deploy_helpers import Control, classify, model_variant, served_model_version

from mlopsdeploy.config import HostConfig
from mlopsdeploy.deployment import lb
from mlopsdeploy.deployment.api import deploy
from mlopsdeploy.deployment.control import haproxy
from mlopsdeploy.deployment.control.audit import run_as_user
from mlopsdeploy.deployment.control.debs import control_release
from mlopsdeploy.deployment.results import REPO_ROOT, DeployResult
from mlopsdeploy.resilience.load import ClientLoad
from mlopsdeploy.testbed import TestVM
from mlopsdeploy.testbed.image import Image
from mlopsdeploy.testbed.lan import Lan
from mlopsdeploy.testbed.pytest_plugin import VMFactory

pytestmark = [pytest.mark.vm, pytest.mark.xdist_group("deploy-lb")]

SENTENCES = {"I am so happy today!": "POSITIVE", "This is the worst day ever.": "NEGATIVE"}
#: Requests/s through the LB. While one host is drained the other (one worker) carries them all:
#: beyond its ``maxconn`` they wait in HAProxy's queue, never in front of its /readyz (before
#: maxconn, at load 28, its health check timed out behind 88 requests: 171 answers were 503).
RATE = 20.0


@dataclass
class Balanced:
    lb_vm: TestVM
    app_vms: list[TestVM]
    lb: HostConfig
    apps: list[HostConfig]
    control: Control
    model_dir: Path
    """The model the app hosts serve now."""
    first: DeployResult | None = None

    def deploy(self, hosts: list[HostConfig] | None = None, **options: Any) -> DeployResult:
        """``mlopsdeploy deploy`` (of ``hosts``, default all) with the inventory's LB hooks."""
        hooks = lb.hooks_for([*self.apps, self.lb])
        opts = self.control.options(self.model_dir, **options)
        return deploy(hosts or self.apps, opts, hooks=hooks)

    def states(self) -> dict[str, str]:
        return {name: s.status for name, s in haproxy.servers(self.lb).items()}

    def errors_answered(self) -> int:
        """5xx answers HAProxy's frontend gave since it started: any user's, not only the
        client load's (its own, when no backend could take a request, and the backends')."""
        stat = haproxy.runtime_command(self.lb, "show stat").removeprefix("# ")
        rows = csv.DictReader(stat.splitlines())
        return sum(int(r["hrsp_5xx"] or 0) for r in rows if r["svname"] == "FRONTEND")

    def haproxy_log(self) -> str:
        """HAProxy's journal (health changes, errors): why requests failed, if they did."""
        return run_as_user(self.lb, "sudo -n journalctl -u haproxy -n 40 --no-pager -o cat")[1]


@pytest.fixture(scope="module")
def balanced(
    testbed_image: Image,
    release_image: Callable[[str], Image],
    control: Control,
    sentiment_model_dir: Path,
) -> Iterator[Balanced]:
    factory = VMFactory(testbed_image)
    try:
        lb_vm = factory(image=release_image(control_release()[0]))
        app_vms = [factory(), factory()]
        apps = [control.host(vm, workers=1) for vm in app_vms]
        with Lan(lb_vm) as lan:
            for vm, cfg in zip(app_vms, apps, strict=True):
                lan.reach(vm, cfg.serve_port)
            state = Balanced(
                lb_vm,
                app_vms,
                control.host(lb_vm, groups=("lb",)),
                apps,
                control,
                sentiment_model_dir,
            )
            state.first = state.deploy()  # cold: both hosts in one batch, nothing to drain
            yield state
    finally:
        factory.destroy_all()


def test_one_deploy_puts_haproxy_in_front_of_both_hosts(balanced: Balanced) -> None:
    first = balanced.first
    assert first is not None and first.ok, [h.error for h in first.hosts]
    assert [h.host for h in first.hosts] == [*(c.name for c in balanced.apps), balanced.lb.name]
    lb_result = first.hosts[-1]
    # The LB VM has no route to a mirror: HAProxy came from the .deb files pushed to it.
    assert "mlopsdeploy load balancer | HAProxy packages" in lb_result.changed
    assert balanced.states() == {cfg.name: "UP" for cfg in balanced.apps}
    for _ in range(4):
        assert classify(balanced.lb, list(SENTENCES)) == list(SENTENCES.values())
    assert all(s.served > 0 for s in haproxy.servers(balanced.lb).values())  # both answered


def test_rolling_release_through_the_lb_loses_no_request(
    balanced: Balanced, tmp_path_factory: pytest.TempPathFactory
) -> None:
    version = served_model_version(balanced.apps[0])
    newer = model_variant(balanced.model_dir, tmp_path_factory.mktemp("lb") / "m", version + "-n")
    balanced.model_dir = newer
    with ClientLoad(balanced.lb.url, rate=RATE) as load:
        result = balanced.deploy(batches=(1,))
    assert result.ok, [h.error for h in result.hosts]
    assert [h.batch for h in result.hosts[:2]] == [1, 2]
    assert result.hosts[-1].changed == []  # the LB was right already: nothing to do there
    report = load.report()
    print(f"[lb] rolling release, 2 hosts one by one, {RATE:.0f} req/s: {report}")
    assert report.requests > 0 and report.not_sent == 0
    # every answer came back 200 with its sentence's label
    assert report.failures == {}, balanced.haproxy_log()
    for cfg in balanced.apps:
        assert served_model_version(cfg) == version + "-n"
    assert balanced.states() == {cfg.name: "UP" for cfg in balanced.apps}
    assert balanced.errors_answered() == 0, balanced.haproxy_log()


def test_a_wiped_host_is_routed_around_then_taken_back_in(balanced: Balanced) -> None:
    victim_vm, victim = balanced.app_vms[0], balanced.apps[0]
    with ClientLoad(balanced.lb.url, rate=RATE) as load:
        load.mark_fault()
        victim_vm.wipe()
        haproxy.wait_for(balanced.lb, victim.name, lambda s: s.status == "DOWN", 30, "DOWN")
        out_after = time.monotonic() - (load.fault_at or 0)
    report = load.report()
    print(f"[lb] app VM wiped, DOWN in HAProxy after {out_after:.1f} s, {RATE:.0f} req/s: {report}")
    assert report.requests > 0 and report.failures == {}, balanced.haproxy_log()
    assert balanced.states()[balanced.apps[1].name] == "UP"

    started = time.monotonic()
    back = balanced.deploy([victim], accept_new_host_key=True)  # deploy --host <victim>
    assert back.ok, [h.error for h in back.hosts]
    assert "mlopsdeploy | Runtime venv" in back.hosts[0].changed
    print(f"[lb] wiped VM deployed and UP in HAProxy in {time.monotonic() - started:.1f} s")
    assert balanced.states() == {cfg.name: "UP" for cfg in balanced.apps}
    served = haproxy.servers(balanced.lb)[victim.name].served
    for _ in range(4):
        assert classify(balanced.lb, list(SENTENCES)) == list(SENTENCES.values())
    assert haproxy.servers(balanced.lb)[victim.name].served > served  # in rotation again
    assert balanced.errors_answered() == 0, balanced.haproxy_log()


def _toml(value: object) -> str:
    """A HostConfig value as TOML (the inventory file the CLI reads)."""
    if isinstance(value, tuple):
        return "[" + ", ".join(_toml(item) for item in value) + "]"
    return str(value) if isinstance(value, int) else json.dumps(str(value))


def test_the_pyinfra_cli_runs_the_same_deploy_over_the_inventory(balanced: Balanced) -> None:
    """``pyinfra inventory.py deploys/main.py`` over the LB and both app hosts (pyinfra groups
    ``lb`` and ``app``), after the library deployed them: no change anywhere, the library's
    own checks ran (HAProxy's backends, each app host's lockdown, labels and UP in HAProxy),
    and the user is told the [rollout] batches are the library's alone."""
    control = balanced.control
    state = control.known_hosts.parent  # the module's key, known_hosts and token live there
    if not (state / "cache").exists():
        (state / "cache").symlink_to(control.cache)  # the session's wheelhouse and app wheels
    keys = [
        *("address", "ssh_port", "user", "own_key", "default_key", "app_port", "listen_port"),
        *("hf_token_file", "workers", "groups", "known_hosts"),
    ]
    lines = ["[rollout]", "batches = [1]"]
    for cfg in [*balanced.apps, balanced.lb]:
        lines.append(f"[hosts.{json.dumps(cfg.name)}]")
        values = {key: getattr(cfg, key) for key in keys}
        lines += [f"{key} = {_toml(value)}" for key, value in values.items() if value is not None]
    (state / "fleet.toml").write_text("\n".join(lines) + "\n")
    env = {
        **os.environ,
        "MLOPSDEPLOY_CONFIG": str(state / "fleet.toml"),
        "MLOPSDEPLOY_STATE_DIR": str(state),
        "MLOPSDEPLOY_MODEL_DIR": str(balanced.model_dir),
    }
    pyinfra = Path(sys.executable).with_name("pyinfra")
    run = subprocess.run(
        [str(pyinfra), "-y", "inventory.py", "deploys/main.py", "--json"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert control.token not in run.stdout + run.stderr  # pyinfra logs operation arguments
    assert run.returncode == 0, run.stderr[-3000:]
    assert "batches [1] are not applied here" in run.stderr
    operations = json.loads(run.stdout)["results"]["operations"]
    names = {op["name"] for op in operations}
    assert any("Verify lockdown and backends" in name for name in names), names
    assert any("Verify lockdown and serving" in name for name in names), names
    assert [op["name"] for op in operations if op["success"] or op["error"]] == []
    assert balanced.states() == {cfg.name: "UP" for cfg in balanced.apps}
    for _ in range(2):
        assert classify(balanced.lb, list(SENTENCES)) == list(SENTENCES.values())
