"""The deploy repairs what facts show broken, changing only that, and the app serves again.

One VM, deployed once; each test breaks one thing, redeploys, and checks both the repair (the
steps that changed) and what a user sees (correct labels on the app port).
"""

from __future__ import annotations

import gc
import json
import os
import pickle
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from deploy_helpers import CANARIES, Deployed, classify, model_variant
from pyinfra.api import Host

from mlopsdeploy.deployment.api import deploy
from mlopsdeploy.deployment.control.ssh_login import key_logs_in
from mlopsdeploy.deployment.host_commands import HOST_LOCK
from mlopsdeploy.deployment.pyinfra_run import run_pyinfra
from mlopsdeploy.deployment.results import REPO_ROOT, HostResult
from mlopsdeploy.errors import DeployError

pytestmark = [pytest.mark.vm, pytest.mark.xdist_group("deploy-repair")]

BASE = "~/mlopsdeploy"


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
    # --no-block: a worker on broken code never says READY, and a blocking restart waits for it.
    deployed.sh(
        f"echo 'broken(' >> {code} && systemctl --user restart --no-block mlopsdeploy.target"
    )
    result = deployed.redeploy()
    assert staged(result) and {"App service", "Verify serving release"} <= steps(result)
    assert "broken(" not in deployed.sh(f"cat {code}")
    assert deployed.redeploy().changed == []


def test_deleted_app_dir_is_unpacked_again(deployed: Deployed) -> None:
    deployed.sh(
        f"rm -rf {BASE}/current/app && systemctl --user restart --no-block mlopsdeploy.target"
    )
    result = deployed.redeploy()
    assert staged(result) and "App service" in steps(result)
    assert deployed.redeploy().changed == []


def test_deleted_checksums_file_is_restored_without_a_restart(deployed: Deployed) -> None:
    deployed.sh(f"rm {BASE}/current/SHA256SUMS")
    result = deployed.redeploy()
    # The app never reads SHA256SUMS: only the seal changes, no worker restarts.
    assert any(name.startswith("Seal release") for name in steps(result)), result.changed
    assert not staged(result) and "App service" not in steps(result), result.changed
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


def serving_venv(deployed: Deployed) -> str:
    """The lock digest of the venv the ``venv`` link points at."""
    return deployed.sh(f"readlink {BASE}/venv").strip().removeprefix("venvs/")


def worker_runs_from(deployed: Deployed) -> set[str]:
    """Which ``venvs/<digest>`` worker 1 has its compiled modules mapped from (what it runs)."""
    pid = deployed.sh("systemctl --user show -p MainPID --value mlopsdeploy@1.service").strip()
    maps = deployed.sh(f"grep -o 'mlopsdeploy/venvs/[0-9a-f]*' /proc/{pid}/maps | sort -u")
    return {line.removeprefix("mlopsdeploy/venvs/") for line in maps.split()}


def test_venv_of_a_new_lock_serves_only_after_its_gate_passed(
    deployed: Deployed, tmp_path: Path
) -> None:
    own = serving_venv(deployed)
    # The workers serve from the venv of another lock: here a copy of the venv under another
    # lock's digest (a venv built from a real second lock costs two more installs of the stack).
    # Without bytecode: workers still building their UI write it there, and a file that
    # vanishes mid-copy (a .pyc's temporary name) failed `cp -a`.
    other = f"{int(own, 16) ^ 1:016x}"
    copy = f"tar -C venvs/{own} --exclude=__pycache__ -cf - . | tar -C venvs/{other} -xpf -"
    deployed.sh(f"cd {BASE} && mkdir venvs/{other} && {copy} && ln -sfn venvs/{other} venv")
    restart = "systemctl --user restart mlopsdeploy.target"  # returns once both are READY
    deployed.vm.run(restart, key=deployed.control.key, timeout=600)
    assert worker_runs_from(deployed) == {other}

    # A release the gate refuses, on the module's own lock: the candidate runs on that venv.
    pid = deployed.sh("systemctl --user show -p MainPID --value mlopsdeploy@1.service")
    bad = model_variant(deployed.model_dir, tmp_path / "bad", "bad-1", swap_labels=True)
    refused = deploy([deployed.cfg], deployed.control.options(bad)).hosts[0]
    assert not refused.ok and "refused by the health gate" in str(refused.error)
    assert "the serving release was left untouched" in str(refused.error)
    # ...and the serving venv was: same link, same worker process, right labels.
    assert serving_venv(deployed) == other and worker_runs_from(deployed) == {other}
    assert deployed.sh("systemctl --user show -p MainPID --value mlopsdeploy@1.service") == pid
    assert classify(deployed.cfg, CANARIES) == ["POSITIVE", "NEGATIVE"]

    # The module's own release on its own lock: gated on its venv, then the workers move.
    moved = deployed.redeploy()
    assert {"Gate candidate release", "Switch venv", "App service"} <= steps(moved)
    assert serving_venv(deployed) == own and worker_runs_from(deployed) == {own}
    assert deployed.sh(f"ls {BASE}/venvs").split() == [own]  # the other one is pruned
    assert deployed.redeploy().changed == []


def test_venv_dir_of_the_earlier_layout_moves_behind_the_link_without_a_restart(
    deployed: Deployed,
) -> None:
    own = serving_venv(deployed)
    deployed.sh(f"cd {BASE} && rm venv && mv venvs/{own} venv && rmdir venvs")  # as before venvs/
    result = deployed.redeploy()
    assert "Venv layout" in steps(result) and "App service" not in steps(result), result.changed
    assert serving_venv(deployed) == own and worker_runs_from(deployed) == {own}
    assert deployed.redeploy().changed == []


def pyinfra_cli(deployed: Deployed, *args: str) -> subprocess.CompletedProcess[str]:
    """``pyinfra -y inventory.py deploys/main.py ...`` as a user runs it, for the module's host."""
    cfg, control = deployed.cfg, deployed.control
    state = control.known_hosts.parent  # the module's key, known_hosts and token live there
    if not (state / "cache").exists():
        (state / "cache").symlink_to(control.cache)  # the session's wheelhouse and app wheels
    env = {
        **os.environ,
        "MLOPSDEPLOY_CONFIG": str(state / "no-hosts.toml"),
        "MLOPSDEPLOY_STATE_DIR": str(state),
        "MLOPSDEPLOY_MODEL_DIR": str(deployed.model_dir),
        "MLOPSDEPLOY_NAME": cfg.name,
        "MLOPSDEPLOY_HOST": cfg.address,
        "MLOPSDEPLOY_SSH_PORT": str(cfg.ssh_port),
        "MLOPSDEPLOY_USER": cfg.user,
        "MLOPSDEPLOY_KEY": str(cfg.own_key),
        "MLOPSDEPLOY_DEFAULT_KEY": str(cfg.default_key),
        "MLOPSDEPLOY_APP_PORT": str(cfg.app_port),
        "MLOPSDEPLOY_HF_TOKEN_FILE": str(control.token_file),
    }
    pyinfra = Path(sys.executable).with_name("pyinfra")
    command = [str(pyinfra), "-y", "inventory.py", "deploys/main.py", *args]
    run = subprocess.run(
        command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=600
    )
    assert control.token not in run.stdout + run.stderr  # pyinfra logs operation arguments
    return run


def test_pyinfra_cli_repairs_under_the_host_lock_and_then_changes_nothing(
    deployed: Deployed,
) -> None:
    code = f"{BASE}/current/app/app/routes.py"
    # Workers restart onto the damaged code (and fail), without waiting for them here.
    deployed.sh(
        f"echo 'broken(' >> {code} && systemctl --user restart --no-block mlopsdeploy.target"
    )
    probe = Path(__file__).with_name("cli_lock_probe.py")
    repair = pyinfra_cli(deployed, str(probe))
    assert repair.returncode == 0, repair.stderr[-3000:]
    assert "host lock: taken" in repair.stdout  # held to the end of the run, not collected
    assert classify(deployed.cfg, CANARIES) == ["POSITIVE", "NEGATIVE"]
    assert "broken(" not in deployed.sh(f"cat {code}")

    again = pyinfra_cli(deployed, "--json")
    assert again.returncode == 0, again.stderr[-3000:]
    operations = json.loads(again.stdout)["results"]["operations"]
    names = {op["name"] for op in operations}
    # The library's checks after its run ran too: lockdown and the final probe, as no change.
    assert any("Verify lockdown and serving" in name for name in names), names
    assert [op["name"] for op in operations if op["success"] or op["error"]] == []
    assert classify(deployed.cfg, CANARIES) == ["POSITIVE", "NEGATIVE"]


def test_home_wipe_bootstraps_the_key_again_and_redeploys(deployed: Deployed) -> None:
    deployed.vm.wipe_home()  # home back to the pristine one: default key only, no app
    result = deployed.redeploy()
    assert "mlopsdeploy bootstrap | Authorize own key" in result.changed  # default key used once
    assert "Runtime venv" in steps(result)  # the venv lived in the wiped home
    assert deployed.cfg.default_key is not None
    assert not key_logs_in(deployed.cfg, deployed.cfg.default_key)
