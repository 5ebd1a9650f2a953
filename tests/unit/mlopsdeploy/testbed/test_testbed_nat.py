"""The course's port layout as nftables rules: forwards in, and no way around them."""

from __future__ import annotations

from pathlib import Path

from mlopsdeploy.testbed.nat import PortForwards, ruleset
from mlopsdeploy.testbed.network import Link


def test_public_ports_are_forwarded_to_sshd_and_the_apps_own_port() -> None:
    rules = ruleset(Link("mlopsdeploy-vm", 7), PortForwards(ssh=22010, app=8010, app_target=8000))
    assert "ip daddr 10.213.7.1 tcp dport 22010 dnat to 10.213.7.2:22" in rules
    assert "ip daddr 10.213.7.1 tcp dport 8010 dnat to 10.213.7.2:8000" in rules


def test_direct_connections_to_the_guests_inner_ports_are_rejected() -> None:
    """Code that still dials port 22 or the app's internal port must fail, not work by luck."""
    rules = ruleset(Link("mlopsdeploy-vm", 7), PortForwards(app_target=8123))
    guard = rules.split("chain output_guard")[1]
    accept, reject = (line.strip() for line in guard.splitlines()[2:4])
    assert accept == "ip daddr 10.213.7.2 tcp dport { 22, 8123 } ct status dnat accept"
    assert reject == "ip daddr 10.213.7.2 tcp dport { 22, 8123 } reject with tcp reset"


def test_forwards_are_recorded_with_the_machine(tmp_path: Path) -> None:
    assert PortForwards.load(tmp_path / "forwards.json") is None
    PortForwards(ssh=22011, app=8011).save(tmp_path / "forwards.json")
    assert PortForwards.load(tmp_path / "forwards.json") == PortForwards(ssh=22011, app=8011)
