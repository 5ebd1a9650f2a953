from __future__ import annotations

from typing import Any

import pytest

from mlopsdeploy.faults import CATALOGUE, NotApplicable, WipeHome, WipeVM, by_name
from mlopsdeploy.faults.base import require_machine

ISSUE_FAULTS = {
    "sigkill", "sigstop", "service-stop", "kill-user", "home-wipe", "vm-wipe", "reboot",
    "venv-corrupt", "model-corrupt", "model-delete", "disk-full", "api-down", "api-slow",
    "api-unauthorized", "port-taken", "app-code-damaged", "app-dir-deleted", "checksums-deleted",
    "venv-file-changed", "concurrent-deploy", "deploy-interrupted",
    # issue 11: one worker of several, and what the deploy itself does to a serving host
    "sigkill-worker", "sigstop-worker", "oom-worker", "release-switch", "rollback",
    "service-restart", "rolling-restart",
}  # fmt: skip


def test_catalogue_covers_the_issue_with_unique_names() -> None:
    names = [fault.name for fault in CATALOGUE]
    assert len(names) == len(set(names))
    assert set(names) >= ISSUE_FAULTS


def test_by_name_finds_entries_and_lists_known_names_otherwise() -> None:
    assert by_name("vm-wipe").name == "vm-wipe"
    with pytest.raises(KeyError, match="sigkill"):
        by_name("meteor-strike")


def test_self_healing_faults_come_first_and_wipes_last() -> None:
    names = [fault.name for fault in CATALOGUE]
    assert names[0] == "sigkill-worker"
    assert names[-2:] == ["home-wipe", "vm-wipe"]


def test_wipes_declare_the_recovery_options_they_need() -> None:
    assert WipeHome.recovery.bootstrap_with_default_key
    assert not WipeHome.recovery.accept_new_host_key
    assert WipeVM.recovery.bootstrap_with_default_key and WipeVM.recovery.accept_new_host_key
    assert by_name("sigkill").recovery.self_heal_seconds > 0


def test_machine_and_api_faults_are_not_applicable_to_a_bare_host(
    guest: Any, make_target: Any
) -> None:
    bare = make_target(guest)
    for name in ("vm-wipe", "home-wipe", "network-cut", "api-down"):
        fault = by_name(name)
        assert fault.not_applicable(bare)
        with pytest.raises(NotApplicable):
            fault.check_applicable(bare)
    assert by_name("sigkill").not_applicable(bare) is None
    with pytest.raises(NotApplicable, match="vm1"):
        require_machine(bare)


def test_describe_is_plain_data() -> None:
    entry = by_name("api-slow").describe()
    assert entry["name"] == "api-slow"
    assert entry["recovery"]["while_active"]["api_error"] == "api_timeout"  # type: ignore[index]
