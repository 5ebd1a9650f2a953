from __future__ import annotations

import subprocess
from pathlib import Path

from mlopsdeploy.deployment.control.ssh_login import ensure_keypair, public_key_line
from mlopsdeploy.deployment.facts.access import AuthorizedKeys
from mlopsdeploy.deployment.operations.access import authorized_key, key_blob

OWN = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOwn"
DEFAULT = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDefault"


def test_adds_own_key_when_missing(run_op) -> None:
    commands = run_op(authorized_key, {AuthorizedKeys: [DEFAULT + " course"]}, key_line=OWN)
    assert len(commands) == 1
    assert "AAAAC3NzaC1lZDI1NTE5AAAAIOwn" in commands[0]
    assert ">> ~/.ssh/authorized_keys" in commands[0]


def test_own_key_present_with_other_comment_is_no_change(run_op) -> None:
    facts = {AuthorizedKeys: [f'from="10.0.0.0/8" {OWN} laptop']}
    assert run_op(authorized_key, facts, key_line=OWN) == []


def test_removes_default_key_by_blob(run_op) -> None:
    facts = {AuthorizedKeys: [DEFAULT + " course-default", OWN]}
    (command,) = run_op(authorized_key, facts, key_line=DEFAULT, present=False)
    assert "grep -vF -- AAAAC3NzaC1lZDI1NTE5AAAAIDefault" in command
    assert "mv ~/.ssh/authorized_keys.new ~/.ssh/authorized_keys" in command


def test_absent_default_key_is_no_change(run_op) -> None:
    assert run_op(authorized_key, {AuthorizedKeys: [OWN]}, key_line=DEFAULT, present=False) == []


def test_fact_ignores_comments_and_blank_lines() -> None:
    assert AuthorizedKeys().process(["# managed", "", OWN]) == [OWN]


def test_generated_keypair_is_reused_and_yields_its_public_line(tmp_path: Path) -> None:
    key = ensure_keypair(tmp_path / "state" / "id_ed25519")
    first = key.read_bytes()
    assert ensure_keypair(key).read_bytes() == first
    line = public_key_line(key)
    pub = subprocess.run(["ssh-keygen", "-y", "-f", str(key)], capture_output=True, text=True)
    assert key_blob(line) == key_blob(pub.stdout)
    assert line.startswith("ssh-ed25519 AAAA")
