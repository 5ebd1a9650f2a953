"""Trust on a deployed VM: sshd hardened (proven with ssh-audit and real login attempts), the
hardening lockout-safe, and ``mlopsdeploy audit`` telling a resisting VM from an open one.

One deployed VM for the module (a full deploy is the expensive part); the tests run in file
order on one xdist worker, each starting from the state the earlier ones leave. Before the
deploy the VM is opened up as a careless course VM would be: passwords for the user and root,
password and root logins allowed.
"""

from __future__ import annotations

import json
import secrets
import shlex
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import paramiko
import pytest
from deploy_helpers import Control, Deployed, classify

from mlopsdeploy import cli
from mlopsdeploy.config import HostConfig
from mlopsdeploy.deployment.api import deploy
from mlopsdeploy.deployment.control import ssh_audit
from mlopsdeploy.deployment.control.host_keys import check_host_key, connect_transport
from mlopsdeploy.deployment.control.host_trust import awaiting_trust, withheld_notice
from mlopsdeploy.deployment.control.ssh_login import key_logs_in, public_key_line
from mlopsdeploy.deployment.facts.sshd import DROP_IN
from mlopsdeploy.deployment.operations import sshd
from mlopsdeploy.deployment.results import HostResult
from mlopsdeploy.testbed import TestVM
from mlopsdeploy.testing.standin import StandIn

pytestmark = [pytest.mark.vm, pytest.mark.xdist_group("deploy-trust")]

TESTBED_SSHD = "/etc/ssh/sshd_config.d/mlopsdeploy-testbed.conf"


@dataclass
class Hardened(Deployed):
    """The module's VM, opened up with ``password`` and then deployed: ``first`` is that deploy."""

    password: str
    first: HostResult
    standin: StandIn


def open_up_sshd(vm: TestVM, password: str) -> None:
    """As root on the fresh VM: passwords set, password, keyboard-interactive and root logins on."""
    script = (
        f"printf '%s\\n' {shlex.quote(f'{vm.user}:{password}')} {shlex.quote(f'root:{password}')}"
        " | chpasswd && sed -i -e 's/^PasswordAuthentication no/PasswordAuthentication yes/'"
        " -e 's/^KbdInteractiveAuthentication no/KbdInteractiveAuthentication yes/'"
        f" -e 's/^PermitRootLogin no/PermitRootLogin yes/' {TESTBED_SSHD}"
        " && systemctl reload ssh.service"
    )
    vm.run(f"sudo -n sh -c {shlex.quote(script)}")


def password_logs_in(cfg: HostConfig, user: str, password: str) -> bool:
    """A real password login attempt, as an attacker who knows the password would make."""
    transport = connect_transport(cfg)
    try:
        transport.auth_password(user, password)
        return transport.is_authenticated()
    except paramiko.AuthenticationException:  # includes "method not allowed"
        return False
    finally:
        transport.close()


def eventually(probe: Callable[[], bool], timeout: float = 20) -> bool:
    """``probe()`` once sshd answers again after a reload (its listener restarts meanwhile)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if probe():
                return True
        except ConnectionError:
            pass
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)


@pytest.fixture(scope="module")
def deployed(module_vm: TestVM, control: Control, sentiment_model_dir: Path) -> Iterator[Hardened]:
    """Overrides the shared fixture: sshd opened up before the first deploy, which may fail."""
    password = secrets.token_urlsafe(12)
    with StandIn(host=module_vm.host_address, token=control.token) as standin:
        cfg = control.host(module_vm, api_model=standin.url)
        open_up_sshd(module_vm, password)
        assert eventually(lambda: password_logs_in(cfg, cfg.user, password))  # a door is open
        assert password_logs_in(cfg, "root", password)
        assert check_host_key(cfg) == "recorded"
        result = deploy([cfg], control.options(sentiment_model_dir)).hosts[0]
        yield Hardened(module_vm, cfg, control, sentiment_model_dir, password, result, standin)


def test_deploy_hardens_sshd_and_password_logins_are_refused(deployed: Hardened) -> None:
    assert deployed.first.ok, deployed.first.error
    assert "mlopsdeploy | sshd hardening" in deployed.first.changed
    assert not password_logs_in(deployed.cfg, deployed.cfg.user, deployed.password)
    assert not password_logs_in(deployed.cfg, "root", deployed.password)
    assert key_logs_in(deployed.cfg, deployed.control.key)


def test_ssh_audit_reports_no_failures(deployed: Hardened) -> None:
    assert ssh_audit.audit(deployed.cfg.address, deployed.cfg.ssh_port) == []


def test_second_deploy_leaves_sshd_alone(deployed: Hardened) -> None:
    again = deploy([deployed.cfg], deployed.control.options(deployed.model_dir)).hosts[0]
    assert again.ok, again.error
    assert "mlopsdeploy | sshd hardening" not in again.changed


def test_audit_passes_on_the_deployed_vm(
    deployed: Hardened, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    use_hosts(monkeypatch, deployed)
    assert cli.main(["audit", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)[0]["checks"]
    assert [row["name"] for row in rows if not row["ok"]] == []
    assert len(rows) == 7


def test_audit_names_the_default_key_when_it_was_re_added(
    deployed: Hardened, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert deployed.cfg.default_key is not None
    line = public_key_line(deployed.cfg.default_key)
    deployed.sh(f"echo {shlex.quote(line)} >> ~/.ssh/authorized_keys")
    use_hosts(monkeypatch, deployed)
    try:
        assert cli.main(["audit"]) == 1
    finally:
        deployed.sh("sed -i '$d' ~/.ssh/authorized_keys")
    failed = [row for row in capsys.readouterr().out.splitlines() if " FAIL " in row]
    assert len(failed) == 1
    assert "default key rejected" in failed[0]


def test_unusable_config_injected_before_reload_is_reverted(
    deployed: Hardened, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Between ``sshd -t`` and the reload, a drop-in appears that denies the user: the new
    login fails, the snapshot comes back, and the host stays reachable with the own key."""
    deployed.sh(f"sudo -n rm {DROP_IN}")  # so the deploy re-applies
    lockout = "/etc/ssh/sshd_config.d/000-lockout.conf"
    inject = f"printf 'DenyUsers {deployed.cfg.user}\\n' > {lockout}"
    real_reload = sshd.reload_command
    monkeypatch.setattr(sshd, "reload_command", lambda unit: f"{inject} && {real_reload(unit)}")
    result = deploy([deployed.cfg], deployed.control.options(deployed.model_dir)).hosts[0]
    assert not result.ok
    assert str(result.error).startswith(
        f"{deployed.cfg.name}: sshd hardening reverted: after reloading sshd, a new SSH login "
        f"with your key {deployed.control.key} was refused; the previous sshd config was "
        "restored and reloaded; your key logs in again"
    )
    assert key_logs_in(deployed.cfg, deployed.control.key)
    left = deployed.sh("ls /etc/ssh/sshd_config.d").split()
    assert left == ["mlopsdeploy-testbed.conf"]  # the injected file and the new drop-in are gone
    monkeypatch.undo()
    healed = deploy([deployed.cfg], deployed.control.options(deployed.model_dir)).hosts[0]
    assert healed.ok, healed.error
    assert healed.changed == ["mlopsdeploy | sshd hardening"]


def use_hosts(monkeypatch: pytest.MonkeyPatch, deployed: Hardened) -> None:
    """Point the CLI at the module's VM through a hosts file, as a user would configure it."""
    cfg = deployed.cfg
    hosts = deployed.control.token_file.parent / "hosts.toml"
    hosts.write_text(
        f"[hosts.{cfg.name}]\n"
        f'address = "{cfg.address}"\nown_key = "{cfg.own_key}"\n'
        f'default_key = "{cfg.default_key}"\nknown_hosts = "{cfg.known_hosts}"\n'
        f'hf_token_file = "{cfg.hf_token_file}"\nuser = "{cfg.user}"\n'
        f'api_model = "{cfg.api_model}"\n'
    )
    monkeypatch.setenv("MLOPSDEPLOY_CONFIG", str(hosts))


def test_a_reimaged_vm_gets_the_app_but_never_the_token_until_trusted(
    deployed: Hardened, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The watchdog's re-provisioning path (nobody confirms the new key) on a re-imaged VM: to
    the deploy it looks exactly like an impostor that accepts the default key."""
    vm, cfg, control = deployed.vm, deployed.cfg, deployed.control
    vm.wipe()  # new host keys, a pristine home that accepts the shared default key
    options = control.options(deployed.model_dir, unconfirmed_host_key=True)
    result = deploy([cfg], options).hosts[0]
    assert result.ok, result.error
    fingerprint = vm.host_key_fingerprint()
    assert awaiting_trust(cfg) == fingerprint
    notice = withheld_notice(cfg)
    assert notice is not None and notice.endswith(f"run: mlopsdeploy trust {cfg.name}")
    leaked = vm.run(
        "sudo -n grep -rlsF -D skip -f /dev/stdin /home /etc /tmp /var/tmp /opt /root",
        key=control.key,
        input=control.token + "\n",
        check=False,
    )
    assert leaked.returncode == 1 and leaked.stdout == ""  # grep found the token nowhere
    assert "APP_AWAITING_HOST_TRUST=" in deployed.sh("cat ~/mlopsdeploy/app.env")
    assert classify(cfg, ["I am so happy today!"]) == ["POSITIVE"]  # the local product serves
    before = deployed.standin.requests
    refused = httpx.post(f"{cfg.url}/api/generate", json={"prompt": "hi"}, timeout=30)
    assert refused.status_code == 503
    assert refused.json()["error"] == "awaiting_host_trust"
    assert deployed.standin.requests == before

    use_hosts(monkeypatch, deployed)
    assert cli.main(["trust", cfg.name, "--fingerprint", "SHA256:not-what-it-shows"]) == 1
    assert awaiting_trust(cfg) == fingerprint
    assert cli.main(["trust", cfg.name, "--fingerprint", fingerprint, "--quiet"]) == 0
    assert awaiting_trust(cfg) is None
    answer = httpx.post(f"{cfg.url}/api/generate", json={"prompt": "hi"}, timeout=60)
    assert answer.status_code == 200, answer.text
    assert deployed.standin.requests > before  # the stand-in demands the token: it arrived
