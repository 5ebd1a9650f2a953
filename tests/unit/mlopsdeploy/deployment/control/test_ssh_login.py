"""Which key the deploy logs in with, and the message when none is accepted."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlopsdeploy.config import HostConfig
from mlopsdeploy.deployment.control import ssh_login
from mlopsdeploy.errors import AccessError


def test_no_accepted_key_names_both_keys_and_the_login(monkeypatch: pytest.MonkeyPatch) -> None:
    """The default key was already removed (by an earlier deploy) and this own key is not the
    one that deploy authorized: say which keys were tried where."""
    monkeypatch.setattr(ssh_login, "key_logs_in", lambda cfg, key: False)
    cfg = HostConfig(
        name="team10",
        address="vm.course.example.org",
        own_key=Path("/home/me/.ssh/id_ed25519_course"),
        default_key=Path("/home/me/course/default_key"),
    )
    with pytest.raises(AccessError) as refused:
        ssh_login.choose_login_key(cfg)
    assert str(refused.value) == (
        "team10: neither your key /home/me/.ssh/id_ed25519_course or the default key "
        f"/home/me/course/default_key is accepted for {cfg.user}@vm.course.example.org"
    )
