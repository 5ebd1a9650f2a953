"""Which hosts to deploy to, and how: read from the user's config file or environment variables.

Nothing host-specific lives in the repository. A user describes their VM once in
``~/.config/mlopsdeploy/hosts.toml`` (or in ``MLOPSDEPLOY_*`` environment variables); with neither,
the callers (CLI ``demo``, ``inventory.py``) fall back to the local testbed VM, which is the
embedded default. See docs/deploy.md for every key.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from types import UnionType
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints

ServiceScope = Literal["user", "system"]
InstallMode = Literal["offline", "online"]

DEFAULT_USER = "student-admin"
DEFAULT_APP_PORT = 8000


class ConfigError(ValueError):
    """The user's host configuration cannot be used; the message says which key and why."""


def state_dir(env: Mapping[str, str] = os.environ) -> Path:
    """Where mlopsdeploy keeps control-side state: own key, known_hosts, wheelhouse cache."""
    if "MLOPSDEPLOY_STATE_DIR" in env:
        return Path(env["MLOPSDEPLOY_STATE_DIR"])
    base = env.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "mlopsdeploy"


def config_path(env: Mapping[str, str] = os.environ) -> Path:
    """The user's hosts file; ``MLOPSDEPLOY_CONFIG`` points elsewhere (tests, several setups)."""
    if "MLOPSDEPLOY_CONFIG" in env:
        return Path(env["MLOPSDEPLOY_CONFIG"])
    return config_home(env) / "mlopsdeploy" / "hosts.toml"


def config_home(env: Mapping[str, str] = os.environ) -> Path:
    """The user's configuration root: ``$XDG_CONFIG_HOME``, else ``~/.config``."""
    return Path(env.get("XDG_CONFIG_HOME") or Path.home() / ".config")


@dataclass(frozen=True)
class HostConfig:
    """Everything the deploy needs to know about one target host.

    The token itself is never stored here, only where to read it from, so a HostConfig can be
    printed, logged and put into pyinfra host data without leaking the secret.
    """

    name: str
    address: str
    own_key: Path
    ssh_port: int = 22
    user: str = DEFAULT_USER
    default_key: Path | None = None
    app_port: int = DEFAULT_APP_PORT
    listen_port: int | None = None
    candidate_port: int | None = None
    app_bind: str = "0.0.0.0"
    api_model: str | None = None
    hf_token_env: str = "HF_TOKEN"
    hf_token_file: Path | None = None
    service_scope: ServiceScope = "user"
    install: InstallMode = "offline"
    index_url: str | None = None
    extra_index_urls: tuple[str, ...] = ()
    keep_releases: int = 3
    reimage_command: str | None = None
    reboot_command: str | None = None
    wipe_home_command: str | None = None
    workers: int = 2
    harden_sshd: bool = True
    push_secrets_on_new_host_key: bool = False
    app_dir: Path | None = None
    groups: tuple[str, ...] = ()
    """Inventory groups (pyinfra's): a host in ``lb`` is a load balancer, never an app host."""
    known_hosts: Path = field(default_factory=lambda: state_dir() / "known_hosts")

    def __post_init__(self) -> None:
        if self.service_scope not in ("user", "system"):
            raise ConfigError(f"{self.name}: service_scope must be 'user' or 'system'")
        if self.install not in ("offline", "online"):
            raise ConfigError(f"{self.name}: install must be 'offline' or 'online'")
        if self.keep_releases < 2:
            raise ConfigError(f"{self.name}: keep_releases must be >= 2 so rollback has a target")
        if self.workers < 1:
            raise ConfigError(f"{self.name}: workers must be >= 1")
        if self.probe_port == self.serve_port:
            raise ConfigError(f"{self.name}: candidate_port must differ from the app's port")

    @property
    def probe_port(self) -> int:
        """Port the candidate release listens on (loopback only) while it is being gated."""
        return self.candidate_port or self.serve_port + 1

    @property
    def serve_port(self) -> int:
        """Port the app listens on on the host: ``listen_port``, else ``app_port``.

        They differ behind a NAT that forwards a public port (the course's 8010) to another
        one on the VM; ``app_port`` is always the one the control machine probes.
        """
        return self.listen_port or self.app_port

    @property
    def base_dir(self) -> str:
        """Deploy root on the host; user units live in the home, system units under /opt."""
        return (
            "/opt/mlopsdeploy"
            if self.service_scope == "system"
            else f"/home/{self.user}/mlopsdeploy"
        )

    @property
    def url(self) -> str:
        return f"http://{self.address}:{self.app_port}"

    def read_token(self, env: Mapping[str, str] = os.environ) -> str | None:
        """The HF token from the configured file, else the configured environment variable."""
        if self.hf_token_file is not None:
            try:
                return self.hf_token_file.expanduser().read_text().strip() or None
            except OSError as e:
                raise ConfigError(f"{self.name}: cannot read hf_token_file: {e.strerror}") from e
        return env.get(self.hf_token_env) or None


def _typed(name: str, key: str, value: Any, hint: Any) -> Any:
    """``value`` as the field's type, or ConfigError naming host, key, expected and found."""
    if get_origin(hint) in (Union, UnionType):  # ``X | None``: None is never written in TOML
        hint = next(arg for arg in get_args(hint) if arg is not type(None))

    def wrong(expected: str) -> ConfigError:
        return ConfigError(f"host {name!r}: {key} must be {expected}, got {value!r}")

    if hint is bool:
        if not isinstance(value, bool):
            raise wrong("true or false")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int | str):
            raise wrong("an integer")
        try:
            return int(value)  # environment variables arrive as text
        except ValueError:
            raise wrong("an integer") from None
    if get_origin(hint) is tuple:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise wrong('a list of strings, e.g. ["https://pypi.org/simple"]')
        return tuple(value)
    if not isinstance(value, str):
        raise wrong("a string")
    return Path(value).expanduser() if hint is Path else value


def host_from_mapping(name: str, values: Mapping[str, Any]) -> HostConfig:
    """Build a HostConfig from TOML/env values, type-checking each key by its field's type."""
    hints = get_type_hints(HostConfig)
    known = {f.name for f in fields(HostConfig)} - {"name"}
    unknown = set(values) - known
    if unknown:
        raise ConfigError(f"host {name!r}: unknown keys {sorted(unknown)}")
    kwargs: dict[str, Any] = {"name": name}
    for key, value in values.items():
        kwargs[key] = _typed(name, key, value, hints[key])
    for required in ("address", "own_key"):
        if required not in kwargs:
            raise ConfigError(f"host {name!r}: missing required key {required!r}")
    return HostConfig(**kwargs)


def load_file(path: Path) -> list[HostConfig]:
    """Hosts from a TOML file: ``[defaults]`` apply to every ``[hosts.<name>]`` table."""
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: invalid TOML: {e}") from e
    defaults = data.get("defaults", {})
    hosts = data.get("hosts", {})
    if not hosts:
        raise ConfigError(f"{path}: no [hosts.<name>] table")
    if not isinstance(defaults, dict) or not isinstance(hosts, dict):
        raise ConfigError(f"{path}: [defaults] and [hosts.<name>] must be tables")
    try:
        return [host_from_mapping(name, {**defaults, **values}) for name, values in hosts.items()]
    except ConfigError as e:
        raise ConfigError(f"{path}: {e}") from None


_ENV_KEYS = {
    "MLOPSDEPLOY_HOST": "address",
    "MLOPSDEPLOY_SSH_PORT": "ssh_port",
    "MLOPSDEPLOY_USER": "user",
    "MLOPSDEPLOY_KEY": "own_key",
    "MLOPSDEPLOY_DEFAULT_KEY": "default_key",
    "MLOPSDEPLOY_APP_PORT": "app_port",
    "MLOPSDEPLOY_LISTEN_PORT": "listen_port",
    "MLOPSDEPLOY_API_MODEL": "api_model",
    "MLOPSDEPLOY_HF_TOKEN_FILE": "hf_token_file",
    "MLOPSDEPLOY_INSTALL": "install",
    "MLOPSDEPLOY_INDEX_URL": "index_url",
}


def load_env(env: Mapping[str, str]) -> list[HostConfig]:
    """One host from ``MLOPSDEPLOY_HOST`` and friends, for CI jobs and one-off runs."""
    if "MLOPSDEPLOY_HOST" not in env:
        return []
    values = {key: env[var] for var, key in _ENV_KEYS.items() if var in env}
    if "own_key" not in values:
        raise ConfigError("MLOPSDEPLOY_HOST is set but MLOPSDEPLOY_KEY (your private key) is not")
    try:
        return [host_from_mapping(env.get("MLOPSDEPLOY_NAME", values["address"]), values)]
    except ConfigError as e:
        raise ConfigError(f"MLOPSDEPLOY_* environment: {e}") from None


def load_hosts(env: Mapping[str, str] = os.environ) -> list[HostConfig]:
    """The user's configured hosts: environment first, then the hosts file; [] means testbed."""
    from_env = load_env(env)
    if from_env:
        return from_env
    path = config_path(env)
    return load_file(path) if path.is_file() else []
