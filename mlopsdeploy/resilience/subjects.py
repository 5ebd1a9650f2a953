"""Adapters from what the project already has to what experiments need.

The deploy library (`mlopsdeploy.runner.deploy`) becomes a Deployer, an SSH login with the
user's own key becomes the faults' Guest shell, the Inference API stand-in becomes an ApiSwitch;
`deployed_subject` puts them together for one host, test VM or real.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import httpx

from mlopsdeploy.config import HostConfig
from mlopsdeploy.deployment.api import deploy
from mlopsdeploy.deployment.control.appspec import AppSpec
from mlopsdeploy.deployment.control.appspec_load import load_app_spec
from mlopsdeploy.deployment.control.host_trust import awaiting_trust
from mlopsdeploy.deployment.control.ssh_login import key_logs_in
from mlopsdeploy.deployment.operations import runtime, service, workers
from mlopsdeploy.deployment.results import DeployOptions
from mlopsdeploy.faults import (
    ApiSwitch,
    AppPaths,
    CommandFailed,
    Guest,
    Machine,
    Service,
    Target,
)
from mlopsdeploy.model.manifest import MANIFEST_NAME, read_manifest
from mlopsdeploy.resilience.experiment import DeployRequest, Subject
from mlopsdeploy.resilience.load import DEFAULT_RATE
from mlopsdeploy.resilience.probes import AppProbe
from mlopsdeploy.resilience.record import DeployRun
from mlopsdeploy.testbed.ssh import ssh_argv
from mlopsdeploy.testing.standin import CONTROL_PATH, StandIn


class SshGuest:
    """The faults' shell on a host: OpenSSH as the deploy user with the own key.

    Host keys are checked against the deploy's own known_hosts file (the deploy records them),
    so a fault never trusts a host the deploy would not.
    """

    def __init__(self, cfg: HostConfig, timeout: float = 120.0) -> None:
        self.cfg = cfg
        self.timeout = timeout

    def sh(self, command: str) -> str:
        cfg = self.cfg
        argv = ssh_argv(cfg.address, cfg.user, cfg.own_key, cfg.known_hosts, cfg.ssh_port, command)
        result = subprocess.run(
            argv,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=self.timeout,
            check=False,
        )
        if result.returncode != 0:
            raise CommandFailed(command, result.returncode, result.stderr + result.stdout)
        return result.stdout


class StandInSwitch:
    """Switches a stand-in running in this process."""

    def __init__(self, standin: StandIn) -> None:
        self.standin = standin

    def set_mode(self, mode: str) -> None:
        self.standin.mode = mode


class HttpStandInSwitch:
    """Switches a stand-in running in another process through its control listener."""

    def __init__(self, control_url: str) -> None:
        self.control_url = control_url

    def set_mode(self, mode: str) -> None:
        httpx.post(
            self.control_url + CONTROL_PATH, json={"mode": mode}, timeout=5
        ).raise_for_status()


class LibraryDeployer:
    """Runs the deploy through the library API — the code path of `pyinfra inventory.py
    deploys/main.py` — and reports it as a DeployRun.

    + model_dir: the model the first deploy ships
    + app_dir: the app source every deploy ships
    + scratch: where tagged release variants are made (a copy of the model whose manifest
      carries the tag: same weights, new release id)

    A request without a tag deploys the release deployed last, as a user re-running their
    deploy would: after a tagged release went out, it is the one serving.

    + vouch_for_new_host_keys: the suite made the machine itself (a disposable testbed VM) and
      re-imaged it, so its new host key is confirmed; otherwise nobody vouches for it (a real
      target re-imaged by its provider's command), so it is accepted only as unconfirmed and
      the secrets stay home until ``mlopsdeploy trust`` (as for the watchdog). Off unless
      asked: a key wrongly vouched for would send the token to a possible impostor.
    """

    def __init__(
        self,
        cfg: HostConfig,
        model_dir: Path,
        app_dir: Path,
        scratch: Path,
        vouch_for_new_host_keys: bool = False,
    ) -> None:
        self.cfg = cfg
        self.vouch_for_new_host_keys = vouch_for_new_host_keys
        self.model_dir = model_dir
        self.app_dir = app_dir
        self.scratch = scratch
        self.release_tag: str | None = None

    def __call__(self, request: DeployRequest) -> DeployRun:
        tag = request.release_tag or self.release_tag
        options = DeployOptions(
            model_dir=self.model_dir if tag is None else self._variant(tag),
            app_dir=self.app_dir,
            accept_new_host_key=request.accept_new_host_key and self.vouch_for_new_host_keys,
            unconfirmed_host_key=request.accept_new_host_key and not self.vouch_for_new_host_keys,
        )
        start = time.monotonic()
        try:
            result = deploy([self.cfg], options).hosts[0]
        except Exception as error:
            seconds = round(time.monotonic() - start, 3)
            return DeployRun(
                request.purpose, False, seconds, error=f"{type(error).__name__}: {error}"
            )
        if result.ok:
            self.release_tag = tag
        return DeployRun(
            purpose=request.purpose,
            ok=result.ok,
            seconds=round(time.monotonic() - start, 3),
            changed=result.changed,
            step_seconds={step.name: step.seconds for step in result.steps if step.changed},
            timings=result.timings,
            error=None if result.error is None else str(result.error),
        )

    def _variant(self, tag: str) -> Path:
        """The model dir for release `tag`: hard links to the weights, a manifest with the tag."""
        out = self.scratch / tag
        if not out.is_dir():
            shutil.copytree(self.model_dir, out, copy_function=_link_or_copy)
            manifest = read_manifest(self.model_dir)
            manifest["release_tag"] = tag
            (out / MANIFEST_NAME).unlink()
            (out / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
        return out


def snapshot_app(app_dir: Path, dest: Path) -> Path:
    """A copy of the app source to deploy from for a whole session.

    The release id hashes the app source, so deploying from a tree someone edits meanwhile
    would make every deploy a new release, and "a further deploy changes nothing" untestable.
    """
    shutil.copytree(
        app_dir, dest, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info", "build", "dist")
    )
    return dest


#: The host's OS release and the Python the deploy builds its venv from, on one line.
SYSTEM_COMMAND = '. /etc/os-release && echo "$PRETTY_NAME, $(python3 -V)"'


def host_system(guest: Guest) -> str:
    """``Debian GNU/Linux 13 (trixie), Python 3.13.5``: what the report names the target by."""
    return guest.sh(SYSTEM_COMMAND).strip()


def _link_or_copy(src: str, dst: str) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def deployed_target(
    cfg: HostConfig, machine: Machine | None, api: ApiSwitch | None, spec: AppSpec | None = None
) -> Target:
    """Where faults act on `cfg`'s host, in the deploy's layout (an app `spec`: one unit)."""
    user_scope = cfg.service_scope == "user"
    units = Service(service.UNIT, cfg.serve_port, user_scope=user_scope)
    if workers.serves_socket(spec):
        units = Service(
            workers.TARGET,
            cfg.serve_port,
            user_scope=user_scope,
            workers=tuple(workers.worker_units(cfg)),
        )
    return Target(
        name=cfg.name,
        guest=SshGuest(cfg),
        service=units,
        paths=AppPaths(
            root=cfg.base_dir,
            venv=runtime.venv_path(cfg),
            model_dir=f"{cfg.base_dir}/current/model",
        ),
        machine=machine,
        api=api,
    )


def deployed_subject(
    cfg: HostConfig,
    model_dir: Path,
    app_dir: Path,
    scratch: Path,
    machine: Machine | None = None,
    api: ApiSwitch | None = None,
    disposable: bool = False,
) -> Subject:
    """An experiment subject for the host `cfg` describes (deployed or about to be).

    An app with its own spec in `app_dir` is probed with its spec's checks and broken in its
    single unit. `disposable`: the caller made the host for the experiments (Subject.disposable);
    only then does the suite vouch for the new host key a wipe gives it. Having a `machine` says
    nothing about who knows the key: a real target's is its provider's re-image command.
    """
    default_key = cfg.default_key
    spec = load_app_spec(app_dir)
    own = None if spec.bundled else spec

    def default_key_rejected() -> bool:
        return default_key is not None and not key_logs_in(cfg, default_key)

    return Subject(
        target=deployed_target(cfg, machine, api, own),
        probe=AppProbe(cfg.url, spec=own),
        deploy=LibraryDeployer(
            cfg, model_dir, app_dir, scratch, vouch_for_new_host_keys=disposable
        ),
        default_key_rejected=default_key_rejected,
        unconfirmed_host_key=lambda: awaiting_trust(cfg),
        load_rate=DEFAULT_RATE if own is None else 0.0,  # the load speaks the bundled API
        disposable=disposable,
    )
