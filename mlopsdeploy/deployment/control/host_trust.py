"""Host keys no person confirmed yet, and what may reach such a host (control side).

The watchdog re-provisions a re-imaged VM on its own, which means accepting a new host key with
nobody at the keyboard. An impostor answering at that address would accept the shared default
key just as readily, so that login proves nothing. Such a key is recorded (the deploy has to
connect) *and* written down here as unconfirmed: until ``mlopsdeploy trust HOST`` clears it,
every deploy to that host withholds the secrets. Only a per-host opt-in
(``push_secrets_on_new_host_key``) lets them go out anyway.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import paramiko

from mlopsdeploy.config import ConfigError, HostConfig
from mlopsdeploy.deployment.control.host_keys import check_host_key, known_hosts_entry
from mlopsdeploy.errors import AccessError


def pending_path(cfg: HostConfig) -> Path:
    """Beside the project known_hosts: ``known_hosts.unconfirmed`` (JSON, entry -> record)."""
    return cfg.known_hosts.with_name(cfg.known_hosts.name + ".unconfirmed")


def _load(path: Path) -> dict[str, dict[str, str]]:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as e:
        # Guessing "confirmed" could leak a secret: say which file is broken instead.
        raise ConfigError(f"{path}: cannot read the unconfirmed host keys: {e}") from e
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: cannot read the unconfirmed host keys: not a JSON object")
    return data


def _save(path: Path, data: dict[str, dict[str, str]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    tmp.replace(path)


def awaiting_trust(cfg: HostConfig) -> str | None:
    """The fingerprint of ``cfg``'s unconfirmed host key, None when a person confirmed it."""
    data = _load(pending_path(cfg))
    record = data.get(known_hosts_entry(cfg))
    return record["fingerprint"] if record else None


def mark_unconfirmed(cfg: HostConfig, fingerprint: str) -> None:
    """Remember that ``cfg``'s recorded key was accepted with no person confirming it."""
    path = pending_path(cfg)
    data = _load(path)
    data[known_hosts_entry(cfg)] = {
        "fingerprint": fingerprint,
        "since": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    _save(path, data)


def mark_confirmed(cfg: HostConfig) -> None:
    """A person confirmed the key now recorded for ``cfg``: secrets may go there again."""
    path = pending_path(cfg)
    data = _load(path)
    if data.pop(known_hosts_entry(cfg), None) is not None:
        _save(path, data)


def trust_command(cfg: HostConfig) -> str:
    """The command a person runs to confirm the key, for messages, journal and alerts."""
    return f"mlopsdeploy trust {cfg.name}"


def recorded_fingerprint(cfg: HostConfig) -> str | None:
    """SHA256 fingerprint of the key the project known_hosts holds for ``cfg`` (any type)."""
    known = paramiko.HostKeys()
    if cfg.known_hosts.exists():
        known.load(str(cfg.known_hosts))
    recorded = known.lookup(known_hosts_entry(cfg))
    if not recorded:
        return None
    return next(iter(recorded.values())).fingerprint


def settle_host_key(
    cfg: HostConfig, accept_new_host_key: bool = False, unconfirmed_ok: bool = False
) -> str:
    """check_host_key, plus who vouched for a replaced key.

    + accept_new_host_key: a person says the VM was re-imaged: the key is confirmed
    + unconfirmed_ok: nobody is there (the watchdog): accept it, but as unconfirmed, unless the
      host opted in with ``push_secrets_on_new_host_key``

    Returns what check_host_key returned (``known``, ``recorded``, ``replaced``).
    """
    outcome = check_host_key(cfg, accept_new_host_key or unconfirmed_ok)
    if outcome == "replaced":
        if accept_new_host_key:
            mark_confirmed(cfg)
        elif not cfg.push_secrets_on_new_host_key:
            mark_unconfirmed(cfg, recorded_fingerprint(cfg) or "unknown")
    return outcome


def withheld_notice(cfg: HostConfig) -> str | None:
    """What to tell a person when secrets are withheld from ``cfg``; None when they are not."""
    fingerprint = awaiting_trust(cfg)
    if fingerprint is None:
        return None
    return (
        f"secrets withheld: the new host key {fingerprint} of {cfg.name} was accepted with "
        f"nobody confirming it; check it and run: {trust_command(cfg)}"
    )


def confirm_host_key(cfg: HostConfig, fingerprint: str) -> None:
    """Record the key ``cfg`` presents as confirmed by a person who checked ``fingerprint``.

    Raises AccessError when the host now presents a different key than the one confirmed.
    """
    check_host_key(cfg, accept_new_host_key=True)
    recorded = recorded_fingerprint(cfg)
    if recorded != fingerprint:
        raise AccessError(
            cfg.name,
            f"the host now presents {recorded}, not the {fingerprint} you confirmed; "
            f"run {trust_command(cfg)} again",
        )
    mark_confirmed(cfg)
