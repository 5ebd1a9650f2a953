"""The suite's real-VM mode end to end, on Debian 13 (Python 3.13), behind the course's NAT.

A trixie testbed VM reached only through the course's forwards (SSH on 22010, the app on 8010)
is described in a hosts.toml and nothing else, as a student's VM would be. The suite runs in a
pytest of its own (`-m resilience --resilience-target NAME`) whose testbed state dir is empty,
so it cannot use the testbed API: its wipes go through the hosts.toml's commands, which call
the testbed's CLI as a provider's CLI would be called. The watchdog then heals the same VM.

One VM, deployed once, is CI's whole matrix beyond bookworm (issue 16): the trixie deploy,
sigkill, home-wipe and vm-wipe, the course's ports, and the watchdog's detection and repair.
Everything else runs on bookworm; `--image trixie` repeats any VM test on trixie (the full
matrix, docs/real-targets.md).
"""

from __future__ import annotations

import json
import os
import secrets
import shlex
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, replace
from pathlib import Path

import httpx
import pytest

from mlopsdeploy.config import HostConfig
from mlopsdeploy.deployment.api import deploy
from mlopsdeploy.deployment.control.ssh_login import ensure_keypair
from mlopsdeploy.deployment.results import DeployOptions
from mlopsdeploy.faults import HangApp
from mlopsdeploy.resilience.experiment import HELD_BACK
from mlopsdeploy.resilience.probes import AppProbe
from mlopsdeploy.resilience.subjects import SshGuest, deployed_target
from mlopsdeploy.testbed import ssh
from mlopsdeploy.testbed.image import Image
from mlopsdeploy.testbed.machine import TestVM
from mlopsdeploy.testbed.nat import PortForwards
from mlopsdeploy.testbed.pytest_plugin import machine_name
from mlopsdeploy.testbed.state import STATE_DIR_ENV
from mlopsdeploy.testbed.target import testbed_host as host_config
from mlopsdeploy.testing.standin import StandIn
from mlopsdeploy.watchdog.background import BackgroundWatchdog

pytestmark = [pytest.mark.vm, pytest.mark.xdist_group("real-target")]

REPO_ROOT = Path(__file__).resolve().parents[2]
RELEASE = "trixie"
COURSE = PortForwards(ssh=22010, app=8010, app_target=8000)
#: The faults any host must survive, in the catalogue's order (the wipe last).
FAULTS = ("sigkill", "home-wipe", "vm-wipe")
SUITE_TIMEOUT_S = 2400.0
STARTUP_S = 180.0
RESTART_S = 180.0


@dataclass(frozen=True)
class RealTarget:
    """The VM, the hosts.toml describing it, and the control-side dirs the runs share."""

    vm: TestVM
    cfg: HostConfig
    hosts_file: Path
    state_dir: Path
    model_dir: Path

    def env(self, **extra: str) -> dict[str, str]:
        """A control machine's environment with only the hosts.toml to go by; this run's own
        PYTEST_* variables (its xdist worker, its current test) stay out of the suite's run."""
        inherited = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
        return {
            **inherited,
            "MLOPSDEPLOY_CONFIG": str(self.hosts_file),
            "MLOPSDEPLOY_STATE_DIR": str(self.state_dir),
            "MLOPSDEPLOY_MODEL_DIR": str(self.model_dir),
            **extra,
        }

    def options(self) -> DeployOptions:
        """The test's own deploys: the suite's wheelhouse cache, and a re-imaged VM's new key
        trusted (the suite re-imaged it)."""
        return DeployOptions(
            model_dir=self.model_dir, cache_dir=self.state_dir / "cache", accept_new_host_key=True
        )


def provider_command(vm: TestVM, command: str) -> str:
    """The testbed CLI line for `command` on `vm`: what a provider's CLI is for a real VM."""
    env = f"{STATE_DIR_ENV}={shlex.quote(str(vm.state.root))}"
    return f"env {env} {shlex.quote(sys.executable)} -m mlopsdeploy.testbed {command} {vm.name}"


def hosts_toml(cfg: HostConfig) -> str:
    """The hosts.toml a student writes for `cfg` (the keys docs/deploy.md lists)."""
    keys: dict[str, object] = {
        "address": cfg.address,
        "ssh_port": cfg.ssh_port,
        "app_port": cfg.app_port,
        "listen_port": cfg.listen_port,
        "user": cfg.user,
        "own_key": str(cfg.own_key),
        "default_key": str(cfg.default_key),
        "known_hosts": str(cfg.known_hosts),
        "api_model": cfg.api_model,
        "hf_token_file": str(cfg.hf_token_file),
        "reimage_command": cfg.reimage_command,
        "wipe_home_command": cfg.wipe_home_command,
        "reboot_command": cfg.reboot_command,
    }
    lines = [f"[hosts.{json.dumps(cfg.name)}]"]
    lines += [f"{key} = {json.dumps(value)}" for key, value in keys.items()]
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def real_target(
    release_image: Callable[[str], Image],
    sentiment_model_dir: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[RealTarget]:
    """A trixie VM behind the course's forwards, with an API stand-in on its link; not deployed."""
    image = release_image(RELEASE)
    work = tmp_path_factory.mktemp("real-target")
    with ExitStack() as stack:
        vm = TestVM(machine_name(), image, forwards=COURSE)
        stack.callback(vm.destroy)
        vm.up()
        token = secrets.token_urlsafe(24)
        token_file = work / "hf-token"
        token_file.touch(mode=0o600)
        token_file.write_text(token)
        standin = stack.enter_context(StandIn(host=vm.host_address, token=token))
        cfg = host_config(
            vm,
            key=ensure_keypair(work / "own-key"),
            known_hosts=work / "known_hosts",
            api_model=standin.url,
        )
        cfg = replace(
            cfg,
            hf_token_file=token_file,
            reimage_command=provider_command(vm, "wipe"),
            wipe_home_command=provider_command(vm, "wipe-home"),
            reboot_command=provider_command(vm, "reboot"),
        )
        hosts_file = work / "hosts.toml"
        hosts_file.write_text(hosts_toml(cfg))
        yield RealTarget(vm, cfg, hosts_file, work / "state", sentiment_model_dir)


def test_suite_breaks_and_heals_a_host_known_only_by_its_hosts_toml(
    real_target: RealTarget, tmp_path: Path
) -> None:
    name = real_target.cfg.name
    no_testbed = tmp_path / "no-testbed"
    no_testbed.mkdir()
    tests = [f"tests/resilience/test_recovery.py::test_recovers_and_works[{f}]" for f in FAULTS]
    argv = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-m", "resilience"]
    argv += [f"--resilience-target={name}", f"--i-know-this-wipes={name}"]
    argv += [f"--resilience-report-dir={tmp_path}", *tests]
    run = subprocess.run(
        argv,
        cwd=REPO_ROOT,
        env=real_target.env(**{STATE_DIR_ENV: str(no_testbed)}),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=SUITE_TIMEOUT_S,
        check=False,
    )
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
    assert "3 passed" in run.stdout
    report = json.loads((tmp_path / "resilience-report.json").read_text())
    records = {record["fault"]: record for record in report["records"]}
    assert list(records) == list(FAULTS)
    assert all(record["verified"] and record["target"] == name for record in records.values())
    assert records["sigkill"]["recovery_path"] in ("self-healed", "no outage")
    assert records["home-wipe"]["recovery_path"] == "redeploy"
    assert records["vm-wipe"]["recovery_path"] == "redeploy"
    # Nobody vouched for the re-imaged VM's new key: the token stayed home, and the API product
    # said so (503 awaiting_host_trust) while the local product labelled right; the report says.
    fingerprint = real_target.vm.host_key_fingerprint()
    assert records["vm-wipe"]["unconfirmed_host_key"] == fingerprint
    assert {check["name"]: check["ok"] for check in records["vm-wipe"]["checks"]}[HELD_BACK]
    assert records["home-wipe"]["unconfirmed_host_key"] is None
    held = f"- **vm-wipe** on {name}: its new host key {fingerprint} was accepted as unconfirmed"
    assert held in (tmp_path / "resilience-report.md").read_text()
    # The report names the release; the suite never touched the testbed's own state.
    assert records["sigkill"]["system"].startswith("Debian GNU/Linux 13 (trixie), Python 3.13")
    assert (
        f"Targets: {name}: Debian GNU/Linux 13 (trixie)"
        in (tmp_path / "resilience-report.md").read_text()
    )
    assert list(no_testbed.iterdir()) == []


def test_watchdog_heals_a_hung_app_through_the_course_ports(
    real_target: RealTarget, tmp_path: Path
) -> None:
    cfg, vm = real_target.cfg, real_target.vm
    deployed = deploy([cfg], real_target.options()).hosts[0]  # no change after the suite's run
    assert deployed.ok, deployed.error
    venv_python = "~/mlopsdeploy/venv/bin/python -c 'import sys; print(sys.version_info[:2])'"
    assert SshGuest(cfg).sh(venv_python).strip() == "(3, 13)"
    with BackgroundWatchdog(
        tmp_path / "watchdog", ["--interval", "1", "--cooldown", "5"], real_target.env()
    ) as watchdog:
        watchdog.wait_log(f"{cfg.name} healthy", STARTUP_S)
        injected = time.time()
        HangApp().inject(deployed_target(cfg, machine=None, api=None))
        incident = watchdog.wait_incident(injected, lambda i: i.state == "recovered", RESTART_S)
    assert [(step.action, step.result) for step in incident.actions] == [("restart", "ok")]
    probe = AppProbe(cfg.url)
    try:
        assert probe.correct().cause is None
    finally:
        probe.close()
    # Everything went through 22010 and 8010: the inner ports exist but are not reachable.
    assert ssh.banner(vm.address, 22, timeout=2) is None
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://{vm.address}:{COURSE.app_target}/livez", timeout=5)
    assert ":8000" in SshGuest(cfg).sh("ss -Hltn 'sport = :8000'")
