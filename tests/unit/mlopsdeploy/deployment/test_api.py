"""``deploy()`` reports one host's failure on that host and goes on with the others."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from mlopsdeploy.config import ConfigError, HostConfig
from mlopsdeploy.deployment import api
from mlopsdeploy.deployment.control.bundle import ReleaseBundle
from mlopsdeploy.deployment.results import DeployOptions, HostResult


def host(name: str) -> HostConfig:
    return HostConfig(name=name, address=f"{name}.example", own_key=Path("/k"))


@pytest.mark.parametrize(
    "failure",
    [
        ConfigError("hf_token_file /x/hf_token: not readable"),
        RuntimeError("pip download failed"),
        OSError(28, "No space left on device"),
    ],
)
def test_failure_preparing_one_host_is_that_hosts_error(monkeypatch, failure) -> None:
    bundle = ReleaseBundle(id="r-1", files={}, model_version="v1")
    monkeypatch.setattr(api, "build_release", lambda *args: bundle)
    monkeypatch.setattr(api, "ensure_access", lambda *args: None)
    monkeypatch.setattr(api, "verify_lockdown", lambda cfg: None)
    served: list[str] = []

    def run_pyinfra(cfg: HostConfig, key: Path, result: HostResult, make: Any) -> None:
        if cfg.name == "bad":
            raise failure
        served.append(cfg.name)

    class Healthy:
        ok, model_version, cause = True, "v1", ""

    monkeypatch.setattr(api, "run_pyinfra", run_pyinfra)
    monkeypatch.setattr(api, "wait_healthy", lambda *args, **kwargs: Healthy())
    result = api.deploy([host("bad"), host("good")], DeployOptions())
    bad, good = result.hosts
    assert not bad.ok and bad.error is not None
    assert str(bad.error).startswith("bad: ") and str(failure) in str(bad.error)
    assert good.ok and served == ["good"]
