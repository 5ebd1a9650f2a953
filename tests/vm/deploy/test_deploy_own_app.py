"""A student's own Gradio app (examples/gradio-app), deployed the way the README tells them to.

One VM for the module: the first deploy follows the README's "Deploy your own app" section (a
hosts.toml and the section's own ``mlopsdeploy deploy --app ...`` line, run as a command); the
later tests read what is served through the app's own UI API (gradio_client), re-run the deploy,
try a spec whose check expects the wrong label, which the gate must refuse by name, and let the
watchdog (probing with the app's own checks) see the app killed and back.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from deploy_helpers import Control, remote
from gradio_client import Client

from mlopsdeploy.config import HostConfig
from mlopsdeploy.deployment.api import deploy
from mlopsdeploy.deployment.control.appspec_load import load_app_spec
from mlopsdeploy.faults import KillApp
from mlopsdeploy.resilience.subjects import deployed_target
from mlopsdeploy.testbed import TestVM
from mlopsdeploy.testing.standin import StandIn
from mlopsdeploy.watchdog.background import BackgroundWatchdog

pytestmark = [pytest.mark.vm, pytest.mark.xdist_group("deploy-own-app")]

REPO_ROOT = Path(__file__).resolve().parents[3]
README = REPO_ROOT / "README.md"


@dataclass
class OwnApp:
    vm: TestVM
    cfg: HostConfig
    control: Control
    model_dir: Path
    app_dir: Path
    deploy_output: str


def readme_command() -> list[str]:
    """The deploy command the README's "Deploy your own app" section tells a student to run."""
    section = README.read_text().split("## Deploy your own app", 1)[1].split("\n## ", 1)[0]
    prompt = "$ .venv/bin/mlopsdeploy deploy"
    line = next(line for line in section.splitlines() if line.startswith(prompt))
    argv = shlex.split(line.removeprefix("$ "))
    return [sys.executable, "-m", "mlopsdeploy", *argv[1:]]  # .venv/bin/mlopsdeploy, this venv


def hosts_toml(cfg: HostConfig) -> str:
    """The hosts file a student writes for their VM (docs/deploy.md), here for the test VM."""
    return "\n".join(
        [
            f"[hosts.{cfg.name}]",
            f'address = "{cfg.address}"',
            f"ssh_port = {cfg.ssh_port}",
            f'user = "{cfg.user}"',
            f'own_key = "{cfg.own_key}"',
            f'default_key = "{cfg.default_key}"',
            f'known_hosts = "{cfg.known_hosts}"',
            f'hf_token_file = "{cfg.hf_token_file}"',
            f'api_model = "{cfg.api_model}"',
            "",
        ]
    )


@pytest.fixture(scope="module")
def own_app(
    module_vm: TestVM,
    control: Control,
    sentiment_model_dir: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[OwnApp]:
    work = tmp_path_factory.mktemp("own-app")
    command = readme_command()
    app_dir = REPO_ROOT / command[command.index("--app") + 1]
    with StandIn(host=module_vm.host_address, token=control.token) as standin:
        cfg = control.host(module_vm, api_model=standin.url)
        config = work / "hosts.toml"
        config.write_text(hosts_toml(cfg))
        state = work / "state"
        state.mkdir()
        (state / "cache").symlink_to(control.cache)  # the session's wheel cache
        env = {**os.environ, "MLOPSDEPLOY_CONFIG": str(config), "MLOPSDEPLOY_STATE_DIR": str(state)}
        env["MLOPSDEPLOY_MODEL_DIR"] = str(sentiment_model_dir)
        run = subprocess.run(command, env=env, capture_output=True, text=True, cwd=REPO_ROOT)
        (work / "deploy-output.txt").write_text(run.stdout + run.stderr)  # kept for a post-mortem
        assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
        yield OwnApp(module_vm, cfg, control, sentiment_model_dir, app_dir, run.stdout)


def labels(url: str, texts: list[str]) -> list[str]:
    """What the app's own UI API answers, as its Gradio client sees it."""
    client = Client(url, verbose=False, download_files=False, analytics_enabled=False)
    return [client.predict(text, api_name="/predict")["label"] for text in texts]


def test_deploy_with_app_dir_serves_the_gradio_app(own_app: OwnApp) -> None:
    assert f"{own_app.cfg.name}: OK" in own_app.deploy_output
    texts = ["I am so happy today!", "This is the worst day ever.", "What a lovely present!"]
    assert labels(own_app.cfg.url, texts) == ["POSITIVE", "NEGATIVE", "POSITIVE"]
    client = Client(own_app.cfg.url, verbose=False, download_files=False, analytics_enabled=False)
    answer = client.predict("Name a colour.", api_name="/ask")
    assert answer == "Stand-in answer to: Name a colour."  # the token reached the app
    start = remote(
        own_app.vm, own_app.control, "systemctl --user show -p ExecStart --value mlopsdeploy"
    )
    assert "_mlopsdeploy_launch.py app:demo" in start


def test_redeploy_of_the_same_app_changes_nothing(own_app: OwnApp) -> None:
    options = own_app.control.options(own_app.model_dir, app_dir=own_app.app_dir)
    again = deploy([own_app.cfg], options).hosts[0]
    assert again.ok, again.error
    assert again.changed == []


def test_gate_refuses_a_spec_expecting_the_wrong_label(own_app: OwnApp, tmp_path: Path) -> None:
    wrong = tmp_path / "gradio-app"
    shutil.copytree(own_app.app_dir, wrong, ignore=shutil.ignore_patterns("__pycache__"))
    spec = wrong / "mlopsdeploy.toml"
    spec.write_text(spec.read_text().replace('label = "POSITIVE"', 'label = "NEGATIVE"', 1))
    options = own_app.control.options(own_app.model_dir, app_dir=wrong)
    refused = deploy([own_app.cfg], options).hosts[0]
    assert not refused.ok
    message = str(refused.error)
    assert "refused by the health gate" in message
    assert "check 'happy sentence' (/predict): label POSITIVE, expected NEGATIVE" in message
    assert labels(own_app.cfg.url, ["I am so happy today!"]) == ["POSITIVE"]  # still serving


def test_watchdog_detects_the_killed_app_and_it_heals(own_app: OwnApp, tmp_path: Path) -> None:
    hosts = tmp_path / "hosts.toml"
    hosts.write_text(hosts_toml(own_app.cfg) + f'app_dir = "{own_app.app_dir}"\n')
    env = {"MLOPSDEPLOY_CONFIG": str(hosts), "MLOPSDEPLOY_MODEL_DIR": str(own_app.model_dir)}
    options = ["--interval", "1", "--cooldown", "5"]
    with BackgroundWatchdog(tmp_path / "state", options, env) as watchdog:
        watchdog.wait_log(f"{own_app.cfg.name} healthy", 300)
        injected = time.time()
        spec = load_app_spec(own_app.app_dir)
        KillApp().inject(deployed_target(own_app.cfg, machine=own_app.vm, api=None, spec=spec))
        incident = watchdog.wait_incident(injected, lambda i: i.state == "recovered", 600)
    assert incident.detected_at >= injected
    assert [step.action for step in incident.actions] in ([], ["restart"])  # never a redeploy
    assert labels(own_app.cfg.url, ["I am so happy today!"]) == ["POSITIVE"]
