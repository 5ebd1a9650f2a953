"""``deploy()`` reports one host's failure on that host and goes on with the others; a rolling
release stops at a failed batch, and the hosts it did not reach keep their release."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from mlopsdeploy.config import ConfigError, HostConfig
from mlopsdeploy.deployment import api
from mlopsdeploy.deployment.control.bundle import ReleaseBundle
from mlopsdeploy.deployment.control.wheelhouse import Lock
from mlopsdeploy.deployment.facts.runtime import PythonTarget, TargetPython
from mlopsdeploy.deployment.pyinfra_run import HostRun
from mlopsdeploy.deployment.results import DeployOptions, DeployResult, HostResult, StepResult
from mlopsdeploy.errors import DeployError


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
    monkeypatch.setattr(api, "_login_key", lambda cfg, *args: cfg.own_key)
    monkeypatch.setattr(api, "verify_lockdown", lambda cfg: None)
    runs: list[list[str]] = []

    def run_hosts(host_runs: list[HostRun]) -> None:
        runs.append([run.cfg.name for run in host_runs])
        for run in host_runs:
            if run.cfg.name == "bad":
                run.error = failure

    monkeypatch.setattr(api, "run_hosts", run_hosts)
    monkeypatch.setattr(api, "wait_healthy", lambda *args, **kwargs: Healthy())
    result = api.deploy([host("bad"), host("good")], DeployOptions())
    bad, good = result.hosts
    assert not bad.ok and bad.error is not None
    assert str(bad.error).startswith("bad: ") and str(failure) in str(bad.error)
    assert good.ok and good.outcome == "deployed"
    assert runs == [["bad", "good"]]  # one pyinfra run for both hosts
    assert result.retry == ["bad"]


class Rollout:
    """deploy() with every host's run faked: ``bad`` hosts fail their gate, the others switch."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, bad: set[str]) -> None:
        self.events: list[str] = []
        self.rolled_back: list[str] = []
        bundle = ReleaseBundle(id="r-2", files={}, model_version="v2")
        monkeypatch.setattr(api, "build_release", lambda *args: bundle)
        monkeypatch.setattr(api, "_serve_hosts", self.serve)
        monkeypatch.setattr(api, "rollback", self.rollback)
        self.bad = bad

    def serve(self, jobs: list[Any], options: DeployOptions) -> None:
        self.events.append("deploy " + ",".join(job.cfg.name for job in jobs))
        for job in jobs:
            if job.cfg.name in self.bad:
                job.result.error = DeployError(job.cfg.name, "release r-2 refused by the gate")
            else:
                job.result.ok = True
                job.result.steps = [StepResult("Switch current release", True, True, 0.1)]

    def rollback(self, hosts: list[HostConfig], options: DeployOptions) -> DeployResult:
        self.rolled_back += [cfg.name for cfg in hosts]
        return DeployResult([HostResult(cfg.name, cfg.url, ok=True) for cfg in hosts])

    def start(self, hosts: Any, options: Any) -> None:
        self.events.append("start")

    def before_batch(self, batch: list[HostConfig]) -> None:
        self.events.append("drain " + ",".join(cfg.name for cfg in batch))

    def after_batch(self, batch: list[HostConfig], results: list[HostResult]) -> None:
        self.events.append("enable " + ",".join(r.host for r in results if r.ok))


FLEET = [host(name) for name in ("a", "b", "c", "d")]
TRIXIE = PythonTarget("3.13", "x86_64", "2.41")


class Healthy:
    """What the control machine's probe sees on a host that serves the release right."""

    ok, model_version, cause = True, "v1", ""


def test_a_failed_batch_stops_the_rollout_and_leaves_the_rest_untouched(monkeypatch) -> None:
    fake = Rollout(monkeypatch, bad={"b"})
    options = DeployOptions(batches=(1, 1, "100%"))
    result = api.deploy(FLEET, options, hooks=fake)
    assert fake.events == [
        "start",
        "drain a",
        "deploy a",
        "enable a",
        "drain b",
        "deploy b",
        "enable ",
    ]
    assert [h.outcome for h in result.hosts] == ["deployed", "failed", "not started", "not started"]
    assert [h.batch for h in result.hosts] == [1, 2, None, None]
    assert result.retry == ["b", "c", "d"] and not result.ok
    assert result.stopped is not None and "b" in result.stopped
    assert "refused by the gate" in str(result.hosts[1].error)
    assert result.hosts[2].release is None  # never offered the new release
    assert fake.rolled_back == []


def test_failures_within_max_fail_let_the_rollout_go_on(monkeypatch) -> None:
    fake = Rollout(monkeypatch, bad={"b"})
    result = api.deploy(FLEET, DeployOptions(batches=(1, 1, "100%"), max_fail=1), hooks=fake)
    assert [h.outcome for h in result.hosts] == ["deployed", "failed", "deployed", "deployed"]
    assert result.stopped is None and result.retry == ["b"]


def test_rollback_failed_puts_the_whole_failed_batch_back(monkeypatch) -> None:
    fake = Rollout(monkeypatch, bad={"c"})
    options = DeployOptions(batches=(1, 2), rollback_failed=True)
    result = api.deploy(FLEET, options, hooks=fake)
    # c's gate kept its old release; b went through, so it is the one switched back.
    assert fake.rolled_back == ["b"]
    assert [h.outcome for h in result.hosts] == ["deployed", "rolled back", "failed", "not started"]
    assert fake.events[-1] == "enable "  # the LB takes the batch back only after the rollback
    assert result.retry == ["b", "c", "d"]


def test_a_batch_the_load_balancer_cannot_drain_is_not_deployed(monkeypatch) -> None:
    fake = Rollout(monkeypatch, bad=set())

    def refuse(batch: list[HostConfig]) -> None:
        raise DeployError("lb", "cannot drain backend b")

    fake.before_batch = refuse  # type: ignore[method-assign]
    result = api.deploy(FLEET[:2], DeployOptions(batches=(1,)), hooks=fake)
    assert fake.events == ["start"]  # refused before any host was touched
    assert [h.outcome for h in result.hosts] == ["failed", "not started"]
    assert "cannot drain backend b" in str(result.hosts[0].error)


def test_a_batch_whose_every_host_fails_reports_each(monkeypatch) -> None:
    monkeypatch.setattr(api, "build_release", lambda *args: ReleaseBundle("r-1", {}, "v1"))
    monkeypatch.setattr(api, "_login_key", lambda cfg, *args: cfg.own_key)

    def run_hosts(host_runs: list[HostRun]) -> None:
        for run in host_runs:
            run.error = DeployError(run.cfg.name, "port 8000 (app port) is already taken")

    monkeypatch.setattr(api, "run_hosts", run_hosts)
    for hosts in (FLEET[:1], FLEET):  # nothing left to verify, on one host or on several
        result = api.deploy(hosts, DeployOptions())
        assert [h.outcome for h in result.hosts] == ["failed"] * len(hosts)
        assert all("already taken" in str(h.error) for h in result.hosts)


class OnPython:
    """A connected host as far as preparing its plan asks: its python3 only."""

    def __init__(self, python: PythonTarget) -> None:
        self.python = python

    def get_fact(self, fact: type) -> PythonTarget:
        assert fact is TargetPython
        return self.python


def test_hosts_on_one_python_share_one_dependency_lock(monkeypatch, tmp_path: Path) -> None:
    """Three hosts on Python 3.11 and one on 3.13: two lock computations, not four, each in
    the caller's thread (packaging's marker parsing is not thread-safe on CPython 3.11)."""
    bookworm = PythonTarget("3.11", "x86_64", "2.36")
    pythons = {"a": bookworm, "b": bookworm, "c": bookworm, "d": TRIXIE}
    bundle = ReleaseBundle(id="r-1", files={}, model_version="v1", requirements=("fastapi",))
    monkeypatch.setattr(api, "build_release", lambda *args: bundle)
    monkeypatch.setattr(api, "_login_key", lambda cfg, *args: cfg.own_key)
    monkeypatch.setattr(api, "verify_served", lambda *args: Healthy())
    monkeypatch.setattr(api, "fetch_installer", lambda cache, python: tmp_path / "uv.whl")
    computed: list[tuple[str, tuple[str, ...], bool]] = []

    def pinned(python: PythonTarget, requires: tuple[str, ...], cache: Path | None) -> Lock:
        on_main = threading.current_thread() is threading.main_thread()
        computed.append((python.version, tuple(requires), on_main))
        return Lock(text=f"fastapi==1\n# {python.version}\n", digest=python.version)

    monkeypatch.setattr(api, "checked_lock", pinned)
    planned: dict[str, Any] = {}

    def run_hosts(host_runs: list[HostRun]) -> None:
        for run in host_runs:  # as pyinfra_run.run_hosts calls make: in the caller's thread
            _, (plan,) = run.make(OnPython(pythons[run.cfg.name]))  # type: ignore[arg-type]
            planned[run.cfg.name] = plan.lock

    monkeypatch.setattr(api, "run_hosts", run_hosts)
    options = DeployOptions(cache_dir=tmp_path, batches=(1, "100%"))
    hosts = [
        HostConfig(name=name, address=f"{name}.example", own_key=Path("/k"), install="online")
        for name in pythons
    ]
    result = api.deploy(hosts, options)
    assert result.ok, [h.error for h in result.hosts]
    # once per Python and requirement set, across batches too; every host got its Python's lock
    assert computed == [("3.11", ("fastapi",), True), ("3.13", ("fastapi",), True)]
    assert planned["a"] is planned["b"] is planned["c"] and planned["d"].digest == "3.13"
