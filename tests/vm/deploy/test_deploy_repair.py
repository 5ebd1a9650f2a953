"""The deploy repairs what facts show broken, changing only that, and the app serves again.

One VM, deployed once; each test breaks one thing, redeploys, and checks both the repair (the
steps that changed) and what a user sees (correct labels on the app port).
"""

from __future__ import annotations

import gc
import pickle
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from deploy_helpers import Control, classify, remote
from pyinfra.api import Host

from mlopsdeploy.config import HostConfig
from mlopsdeploy.deployment.api import deploy
from mlopsdeploy.deployment.control.ssh_login import key_logs_in
from mlopsdeploy.deployment.host_commands import HOST_LOCK
from mlopsdeploy.deployment.pyinfra_run import run_pyinfra
from mlopsdeploy.deployment.results import HostResult
from mlopsdeploy.errors import DeployError
from mlopsdeploy.testbed import TestVM

pytestmark = [pytest.mark.vm, pytest.mark.xdist_group("deploy-repair")]

CANARIES = ["I am so happy today!", "This is the worst day ever."]
BASE = "~/mlopsdeploy"


@dataclass
class Deployed:
    vm: TestVM
    cfg: HostConfig
    control: Control
    model_dir: Path

    def redeploy(self) -> HostResult:
        result = deploy([self.cfg], self.control.options(self.model_dir)).hosts[0]
        assert result.ok, result.error
        assert classify(self.cfg, CANARIES) == ["POSITIVE", "NEGATIVE"]
        return result

    def sh(self, command: str) -> str:
        return remote(self.vm, self.control, command)


@pytest.fixture(scope="module")
def deployed(module_vm: TestVM, control: Control, sentiment_model_dir: Path) -> Iterator[Deployed]:
    state = Deployed(module_vm, control.host(module_vm), control, sentiment_model_dir)
    state.redeploy()
    yield state


def steps(result: HostResult) -> set[str]:
    return {name.removeprefix("mlopsdeploy | ") for name in result.changed}


def test_stopped_service_is_started(deployed: Deployed) -> None:
    deployed.sh("systemctl --user stop mlopsdeploy.target")  # every worker; the socket stays
    assert steps(deployed.redeploy()) == {"App service", "Verify serving release"}


def test_deleted_unit_is_reinstalled(deployed: Deployed) -> None:
    unit = "~/.config/systemd/user/mlopsdeploy@.service"
    deployed.sh(f"systemctl --user disable --now mlopsdeploy.target && rm {unit}")
    deployed.sh("systemctl --user daemon-reload")
    assert {"App units", "App service"} <= steps(deployed.redeploy())
    assert deployed.sh("systemctl --user is-enabled mlopsdeploy.target").strip() == "enabled"


def test_broken_package_is_reinstalled_alone(deployed: Deployed) -> None:
    site = f"{BASE}/venv/lib/python3.11/site-packages"
    deployed.sh(f"rm -rf {site}/fastapi")
    result = deployed.redeploy()
    assert "Runtime venv" in steps(result)
    assert "Stage release" not in " ".join(steps(result))  # the release was left alone
    assert deployed.sh(f"test -f {site}/fastapi/__init__.py && echo present").strip() == "present"


def test_model_file_failing_its_checksum_is_pushed_again(deployed: Deployed) -> None:
    weights = f"{BASE}/current/model/config.json"  # read by both runtimes
    before = deployed.sh(f"sha256sum < {weights}")
    deployed.sh(f"printf x >> {weights}")
    result = deployed.redeploy()
    assert any(name.startswith("Stage release") for name in steps(result))
    assert deployed.sh(f"sha256sum < {weights}") == before


def staged(result: HostResult) -> bool:
    return any(name.startswith("Stage release") for name in steps(result))


def test_damaged_app_code_is_restored_from_the_bundle(deployed: Deployed) -> None:
    code = f"{BASE}/current/app/app/routes.py"
    deployed.sh(f"echo 'broken(' >> {code} && systemctl --user restart mlopsdeploy.target")
    result = deployed.redeploy()
    assert staged(result) and {"App service", "Verify serving release"} <= steps(result)
    assert "broken(" not in deployed.sh(f"cat {code}")
    assert deployed.redeploy().changed == []


def test_deleted_app_dir_is_unpacked_again(deployed: Deployed) -> None:
    deployed.sh(f"rm -rf {BASE}/current/app && systemctl --user restart mlopsdeploy.target")
    result = deployed.redeploy()
    assert staged(result) and "App service" in steps(result)
    assert deployed.redeploy().changed == []


def test_deleted_checksums_file_is_restored(deployed: Deployed) -> None:
    deployed.sh(f"rm {BASE}/current/SHA256SUMS")
    assert staged(deployed.redeploy())
    assert deployed.sh(f"cd {BASE}/current && sha256sum --quiet -c SHA256SUMS && echo ok") == "ok\n"
    assert deployed.redeploy().changed == []


def test_changed_file_of_an_installed_package_is_reinstalled(deployed: Deployed) -> None:
    module = f"{BASE}/venv/lib/python3.11/site-packages/fastapi/__init__.py"
    before = deployed.sh(f"sha256sum < {module}")
    deployed.sh(f"sed -i '1s/F/f/' {module}")  # same size: only its hash tells
    assert deployed.sh(f"sha256sum < {module}") != before
    result = deployed.redeploy()
    assert {"Runtime venv", "App service"} <= steps(result) and not staged(result)
    assert deployed.sh(f"sha256sum < {module}") == before
    assert deployed.redeploy().changed == []


def deploy_in_child(deployed: Deployed, tmp_path: Path) -> subprocess.Popen[bytes]:
    """The same deploy in a process of its own, as a second user (or a killed one) runs it."""
    job = tmp_path / "job.pickle"
    job.write_bytes(pickle.dumps((deployed.cfg, deployed.control.options(deployed.model_dir))))
    script = (
        "import pickle, sys; from mlopsdeploy.deployment.api import deploy;"
        " cfg, options = pickle.load(open(sys.argv[1], 'rb'));"
        " result = deploy([cfg], options).hosts[0];"
        " print(int(result.ok), ','.join(result.changed)); sys.exit(0 if result.ok else 1)"
    )
    return subprocess.Popen([sys.executable, "-c", script, str(job)], stdout=subprocess.PIPE)


def test_host_lock_stays_taken_for_the_whole_run(deployed: Deployed) -> None:
    lock = f"{BASE}/{HOST_LOCK}"
    seen: list[str] = []

    def make(target: Host) -> tuple[Callable[..., Any], tuple[Any, ...]]:
        gc.collect()  # nothing but the run may keep the lock alive (paramiko holds channels weakly)
        seen.append(deployed.sh(f"flock -w 3 {lock} true && echo free || echo taken").strip())
        raise DeployError(deployed.cfg.name, "stop after looking")

    with pytest.raises(DeployError, match="stop after looking"):
        run_pyinfra(deployed.cfg, deployed.cfg.own_key, HostResult("h", "u"), make)
    assert seen == ["taken"]  # a 3 s wait for the lock in the middle of the run is not enough
    # ...and it is given back when the run ends.
    assert deployed.sh(f"flock -w 30 {lock} true && echo free || echo taken").strip() == "free"


def test_two_deploys_at_once_take_turns(deployed: Deployed, tmp_path: Path) -> None:
    deployed.sh(f"echo '# changed' >> {BASE}/current/app/app/routes.py")
    other = deploy_in_child(deployed, tmp_path)
    here = deploy([deployed.cfg], deployed.control.options(deployed.model_dir)).hosts[0]
    out, _ = other.communicate(timeout=600)
    ok, _, changed = out.decode().strip().partition(" ")
    assert here.ok and ok == "1", (here.error, out)
    # One repaired the release while the other waited for the lock, then found it intact.
    restaged = [staged(here), "Stage release" in changed]
    assert sorted(restaged) == [False, True], (here.changed, changed)
    assert classify(deployed.cfg, CANARIES) == ["POSITIVE", "NEGATIVE"]


def test_deploy_killed_while_staging_converges_on_the_next_run(
    deployed: Deployed, tmp_path: Path
) -> None:
    release = f"{BASE}/current"
    deployed.sh(f"rm -r {release}/app {release}/model/config.json")
    killed = deploy_in_child(deployed, tmp_path)
    # Killed as soon as the stage has begun (its marker is the first thing it removes).
    poll = f"timeout 120 sh -c 'until [ ! -e {release}/.complete ]; do sleep 0.05; done'"
    deployed.sh(poll)
    killed.kill()
    killed.wait()
    result = deployed.redeploy()
    assert staged(result)
    leftovers = f"cd {BASE} && ls -a . {release} | grep -E 'partial|[.]new' || true"
    assert deployed.sh(leftovers) == ""
    assert deployed.redeploy().changed == []


def test_home_wipe_bootstraps_the_key_again_and_redeploys(deployed: Deployed) -> None:
    deployed.vm.wipe_home()  # home back to the pristine one: default key only, no app
    result = deployed.redeploy()
    assert "mlopsdeploy bootstrap | Authorize own key" in result.changed  # default key used once
    assert "Runtime venv" in steps(result)  # the venv lived in the wiped home
    assert deployed.cfg.default_key is not None
    assert not key_logs_in(deployed.cfg, deployed.cfg.default_key)
