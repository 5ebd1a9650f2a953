"""Rolling releases across hosts: which hosts go in which batch, and when the rollout stops.

Plain logic, no pyinfra: ``deploy()`` (deployment/api.py) runs one pyinfra State per batch and
asks this module how big the next batch is and whether the failures so far stop the rollout.
Batches follow Ansible's ``serial``: ``[1, "25%", "100%"]`` means one host first (the canary
host), then a quarter of all hosts per batch, then all the rest; the last entry repeats.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, TypeVar

from mlopsdeploy.config import ConfigError, HostConfig, config_path

if TYPE_CHECKING:
    from mlopsdeploy.deployment.results import DeployOptions, HostResult

T = TypeVar("T")

BatchSize = int | str


def _amount(value: object, total: int, what: str, minimum: int) -> int:
    """``value`` (a count, or ``"25%"`` of ``total``) as a host count; ConfigError if malformed.

    A percent is floored but raised to ``minimum``; a count below ``minimum`` is an error.
    """
    if isinstance(value, bool):
        raise ConfigError(f'{what} must be a count or a percent like "25%", got {value!r}')
    if isinstance(value, int):
        count = value
    elif isinstance(value, str) and value.strip().endswith("%"):
        try:
            percent = float(value.strip()[:-1])
        except ValueError:
            raise ConfigError(f"{what} must be a count or a percent, got {value!r}") from None
        if not 0 <= percent <= 100:
            raise ConfigError(f"{what} percent must be within 0-100%, got {value!r}")
        return max(int(total * percent / 100), minimum)  # floored, as Ansible does
    elif isinstance(value, str) and value.strip().isdigit():
        count = int(value.strip())
    else:
        raise ConfigError(f'{what} must be a count or a percent like "25%", got {value!r}')
    if count < minimum:
        raise ConfigError(f"{what} must be at least {minimum}, got {value!r}")
    return count


def batch_sizes(batches: Sequence[BatchSize], total: int) -> list[int]:
    """Sizes of the consecutive batches that cover ``total`` hosts.

    A percent is of all hosts, floored but at least one host; the last entry repeats until
    every host has a batch; no entries means one batch of every host.
    """
    if total <= 0:
        return []
    if not batches:
        return [total]
    sizes = [_amount(b, total, "a batch", minimum=1) for b in batches]
    out: list[int] = []
    left = total
    for i in range(total):  # at most one host per batch: bounded
        size = sizes[min(i, len(sizes) - 1)]
        out.append(min(size, left))
        left -= out[-1]
        if not left:
            break
    return out


def split(hosts: Sequence[T], batches: Sequence[BatchSize]) -> list[list[T]]:
    """``hosts`` in inventory order, cut into the batches ``batch_sizes`` gives."""
    out, start = [], 0
    for size in batch_sizes(batches, len(hosts)):
        out.append(list(hosts[start : start + size]))
        start += size
    return out


def fail_limit(max_fail: BatchSize, total: int) -> int:
    """How many failed hosts the rollout tolerates (``"10%"`` of ``total`` floored, or a count)."""
    return _amount(max_fail, total, "max_fail", minimum=0)


def stop_reason(failed: Sequence[str], limit: int, batches_left: int) -> str | None:
    """Why the rollout stops after a batch, or None to go on."""
    if len(failed) <= limit or not batches_left:
        return None
    return (
        f"{len(failed)} host(s) failed ({', '.join(failed)}), more than max_fail={limit}: "
        f"the rollout stopped with {batches_left} batch(es) not started"
    )


@dataclass(frozen=True)
class RolloutSettings:
    """The ``[rollout]`` table of hosts.toml: defaults for ``deploy``'s --batches/--max-fail."""

    batches: tuple[BatchSize, ...] = ()
    max_fail: BatchSize = 0


def parse_batches(text: str) -> tuple[BatchSize, ...]:
    """``"1,25%,100%"`` (the CLI's form) as ``(1, "25%", "100%")``, checked."""
    items: list[BatchSize] = [
        int(part) if part.strip().isdigit() else part.strip() for part in text.split(",")
    ]
    batch_sizes(items, 100)  # raises ConfigError for a malformed entry
    return tuple(items)


def load_settings(env: Mapping[str, str] = os.environ) -> RolloutSettings:
    """``[rollout]`` from the user's hosts file; defaults when there is no file or no table."""
    path = config_path(env)
    if not path.is_file():
        return RolloutSettings()
    try:
        table = tomllib.loads(path.read_text()).get("rollout", {})
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: invalid TOML: {e}") from e
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: [rollout] must be a table")
    unknown = set(table) - {"batches", "max_fail"}
    if unknown:
        raise ConfigError(f"{path}: [rollout]: unknown keys {sorted(unknown)}")
    batches = table.get("batches", [])
    if not isinstance(batches, list):
        raise ConfigError(f'{path}: [rollout] batches must be a list, e.g. [1, "25%", "100%"]')
    try:
        batch_sizes(batches, 100)
        fail_limit(table.get("max_fail", 0), 100)
    except ConfigError as e:
        raise ConfigError(f"{path}: [rollout]: {e}") from None
    return RolloutSettings(tuple(batches), table.get("max_fail", 0))


class RolloutHooks(Protocol):
    """What runs around each batch of a rolling release (the load balancer drains and enables).

    A DeployError raised by ``before_batch`` fails that batch's hosts before any is touched and
    stops the rollout; one raised by ``after_batch`` is recorded on the batch's hosts.
    """

    def start(self, hosts: Sequence[HostConfig], options: DeployOptions) -> None:
        """Once, before the first batch."""

    def before_batch(self, batch: Sequence[HostConfig]) -> None:
        """Before the batch's hosts are touched (take them out of the load balancer)."""

    def after_batch(self, batch: Sequence[HostConfig], results: Sequence[HostResult]) -> None:
        """After the batch's gate (and rollback, if asked): put the hosts back in."""


class NoHooks:
    """No load balancer: nothing to drain or enable."""

    def start(self, hosts: Sequence[HostConfig], options: DeployOptions) -> None:
        return None

    def before_batch(self, batch: Sequence[HostConfig]) -> None:
        return None

    def after_batch(self, batch: Sequence[HostConfig], results: Sequence[HostResult]) -> None:
        return None
