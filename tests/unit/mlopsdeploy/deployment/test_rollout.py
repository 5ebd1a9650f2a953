"""Batch sizes and the max_fail limit of a rolling release (Ansible ``serial`` semantics)."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlopsdeploy.config import ConfigError
from mlopsdeploy.deployment.rollout import (
    RolloutSettings,
    batch_sizes,
    fail_limit,
    load_settings,
    parse_batches,
    split,
    stop_reason,
)


@pytest.mark.parametrize(
    ("batches", "total", "sizes"),
    [
        ((), 3, [3]),  # no batches: every host at once
        ((1, "25%", "100%"), 10, [1, 2, 7]),
        ((1, "25%", "100%"), 3, [1, 1, 1]),  # 25% of 3 floors to 0, raised to one host
        ((2,), 5, [2, 2, 1]),  # the last entry repeats
        (("50%",), 4, [2, 2]),
        ((1, 5), 3, [1, 2]),  # a batch larger than what is left takes the rest
        (("100%",), 1, [1]),
        ((1,), 0, []),
    ],
)
def test_batch_sizes_cover_every_host_once(batches, total, sizes) -> None:
    assert batch_sizes(batches, total) == sizes
    assert sum(sizes) == total


def test_split_keeps_inventory_order() -> None:
    assert split(["a", "b", "c", "d"], (1, "50%")) == [["a"], ["b", "c"], ["d"]]


@pytest.mark.parametrize("bad", [0, "0", "-1", "abc", "150%", "x%", True, 1.5])
def test_a_malformed_batch_is_refused_with_its_value(bad) -> None:
    with pytest.raises(ConfigError, match="batch"):
        batch_sizes((bad,), 10)


@pytest.mark.parametrize(
    ("max_fail", "total", "limit"),
    [(0, 10, 0), (2, 10, 2), ("10%", 10, 1), ("10%", 5, 0), ("50%", 3, 1), ("100%", 4, 4)],
)
def test_fail_limit_counts_or_floors_a_percent_of_all_hosts(max_fail, total, limit) -> None:
    assert fail_limit(max_fail, total) == limit


@pytest.mark.parametrize("bad", [-1, "-1", "lots", "101%"])
def test_a_malformed_max_fail_is_refused(bad) -> None:
    with pytest.raises(ConfigError, match="max_fail"):
        fail_limit(bad, 10)


def test_the_rollout_stops_once_more_hosts_failed_than_allowed() -> None:
    assert stop_reason([], 0, batches_left=2) is None
    assert stop_reason(["b"], 1, batches_left=2) is None  # within max_fail
    reason = stop_reason(["b", "c"], 1, batches_left=2)
    assert reason is not None and "b, c" in reason and "2 batch(es) not started" in reason
    assert stop_reason(["b"], 0, batches_left=0) is None  # nothing left to stop


def test_cli_batches_are_parsed_and_checked() -> None:
    assert parse_batches("1, 25%,100%") == (1, "25%", "100%")
    with pytest.raises(ConfigError):
        parse_batches("1,,2")


def test_rollout_table_of_the_hosts_file(tmp_path: Path) -> None:
    hosts = tmp_path / "hosts.toml"
    env = {"MLOPSDEPLOY_CONFIG": str(hosts)}
    assert load_settings(env) == RolloutSettings()  # no file: defaults
    hosts.write_text('[rollout]\nbatches = [1, "25%", "100%"]\nmax_fail = "10%"\n')
    assert load_settings(env) == RolloutSettings((1, "25%", "100%"), "10%")
    hosts.write_text("[rollout]\nbatchs = [1]\n")
    with pytest.raises(ConfigError, match="unknown keys"):
        load_settings(env)
    hosts.write_text('[rollout]\nbatches = [1, "quarter"]\n')
    with pytest.raises(ConfigError, match="quarter"):
        load_settings(env)
