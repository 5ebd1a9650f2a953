"""pytest plugin for the resilience suite (`-p mlopsdeploy.resilience.pytest_plugin -m resilience`).

Fixtures:
  resilience_subject  session (one per xdist worker): a host deployed once — a fresh testbed VM
                      with its own Inference API stand-in, or with --resilience-target the
                      user's own host from their inventory
  resilience_host     the same host, brought back to steady state first if an earlier
                      experiment left it broken
  record_experiment   hand it an experiment's Record: it goes into the report

Options:
  --resilience-report-dir DIR   where resilience-report.{json,md,png} go (default: rootdir;
                                env MLOPSDEPLOY_RESILIENCE_REPORT_DIR)
  --resilience-repeat N         run each fault N times (for medians)
  --resilience-target HOST      break HOST from the user's inventory instead of a test VM...
  --i-know-this-wipes HOST      ...which is destructive, so it must be confirmed by name
  --app DIR                     deploy and break your own app (its mlopsdeploy.toml's checks
                                are the verdict) with the faults any app must survive

Records travel as test-report user properties, so under pytest-xdist each worker's records
reach the controller with its reports, and the controller alone writes the report.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import pytest

from mlopsdeploy.config import HostConfig, load_hosts
from mlopsdeploy.deployment.control.appspec import AppSpecError
from mlopsdeploy.deployment.control.appspec_load import load_app_spec
from mlopsdeploy.deployment.control.ssh_login import ensure_keypair
from mlopsdeploy.deployment.results import DeployOptions
from mlopsdeploy.faults import CATALOGUE, ApiSwitch, Machine
from mlopsdeploy.model.manifest import MANIFEST_NAME
from mlopsdeploy.resilience.experiment import DeployRequest, Subject, restore_steady_state
from mlopsdeploy.resilience.real_vm import CommandMachine
from mlopsdeploy.resilience.record import Record
from mlopsdeploy.resilience.report import summarize, targets, text_table, write_report
from mlopsdeploy.resilience.subjects import (
    StandInSwitch,
    deployed_subject,
    host_system,
    snapshot_app,
)
from mlopsdeploy.testbed.machine import TestVM
from mlopsdeploy.testing.standin import StandIn

pytest_plugins = ["mlopsdeploy.testbed.pytest_plugin"]

REPORT_DIR_ENV = "MLOPSDEPLOY_RESILIENCE_REPORT_DIR"
RECORD_PROPERTY = "resilience_record"
#: What any app must survive; the other faults assume the bundled app's routes and files.
APP_FAULTS = ("sigkill", "home-wipe", "vm-wipe")
#: The stand-in's `slow` mode holds a request longer than the app's API timeout (20 s).
API_SLOW_SECONDS = 30.0


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("resilience", "resilience suite (mlopsdeploy)")
    group.addoption(
        "--resilience-report-dir",
        default=os.environ.get(REPORT_DIR_ENV),
        help=f"directory for resilience-report.json/.md/.png (default: rootdir; ${REPORT_DIR_ENV})",
    )
    group.addoption(
        "--resilience-repeat",
        type=int,
        default=1,
        metavar="N",
        help="run every fault N times (faults with a recovery-time goal run at least 3 times)",
    )
    group.addoption(
        "--resilience-target",
        metavar="HOST",
        help="run the resilience suite against HOST from your inventory instead of a test VM",
    )
    group.addoption(
        "--app",
        type=Path,
        metavar="DIR",
        help=f"your app's dir (with mlopsdeploy.toml): only the faults {', '.join(APP_FAULTS)}",
    )
    group.addoption(
        "--i-know-this-wipes",
        metavar="HOST",
        help="confirm --resilience-target: faults kill, corrupt and fill things on HOST",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "resilience: breaks test VMs and proves recovery (pytest -m resilience)"
    )
    target = config.getoption("resilience_target")
    if target:
        _inventory_host(target, config.getoption("i_know_this_wipes"))
    app = config.getoption("app")
    if app is not None:
        try:
            load_app_spec(app)
        except AppSpecError as e:
            raise pytest.UsageError(f"--app: {e}") from None
    config.pluginmanager.register(ReportCollector(config), "mlopsdeploy-resilience-report")


def _inventory_host(name: str, confirmed: str | None) -> HostConfig:
    """The user's host `name`, once they confirmed by naming it again; else a usage error."""
    if confirmed != name:
        raise pytest.UsageError(
            f"--resilience-target={name} breaks that host on purpose; "
            f"confirm with --i-know-this-wipes={name}"
        )
    hosts = {cfg.name: cfg for cfg in load_hosts()}
    if name not in hosts:
        raise pytest.UsageError(f"--resilience-target={name}: not in your hosts {sorted(hosts)}")
    return hosts[name]


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """With a real target every experiment hits the same host: keep them on one xdist worker.

    First, because xdist's own hook turns the group mark into the worker's grouping key.
    """
    target = config.getoption("resilience_target")
    if not target:
        return
    for item in items:
        if item.get_closest_marker("resilience"):
            item.add_marker(pytest.mark.xdist_group(f"resilience-{target}"))


class ReportCollector:
    """Gathers records from test reports and, in the controlling process, writes the report."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.records: list[Record] = []
        self.written: list[Path] = []

    @property
    def controls(self) -> bool:
        """False in an xdist worker: its records reach the controller with its reports."""
        return not hasattr(self.config, "workerinput")

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.when != "call":
            return
        for name, value in report.user_properties:
            if name == RECORD_PROPERTY and isinstance(value, dict):
                self.records.append(Record.from_dict(value))
                self._progress(self.records[-1])

    def _progress(self, record: Record) -> None:
        """Say how a fault ended as soon as it has: a whole run takes many minutes."""
        terminal = self.config.pluginmanager.get_plugin("terminalreporter")
        if not self.controls or terminal is None:
            return
        terminal.ensure_newline()
        terminal.write_line(progress_line(record))

    def pytest_sessionfinish(self) -> None:
        if not self.controls or not self.records:
            return
        directory = Path(self.config.getoption("resilience_report_dir") or self.config.rootpath)
        self.written = write_report(self.records, directory)

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        if not self.controls or not self.records:
            return
        terminalreporter.section("resilience report")
        for line in text_table(summarize(self.records)):
            terminalreporter.write_line(line)
        terminalreporter.write_line("targets: " + "; ".join(targets(self.records)))
        for path in self.written:
            terminalreporter.write_line(f"written: {path}")


def progress_line(record: Record) -> str:
    """`[resilience] <fault> on <target>: <how it ended>`, one line per finished fault."""
    head = f"[resilience] {record.fault} on {record.target}: "
    if record.verified:
        seconds = record.seconds_to_recover or 0.0
        return head + f"recovered ({record.recovery_path}) in {seconds:.1f} s"
    failed = [check.name for check in record.checks if not check.ok]
    why = record.error or (f"failed checks: {', '.join(failed)}" if failed else "")
    return head + f"NOT verified ({record.recovery_path}){': ' + why if why else ''}"


@pytest.fixture
def record_experiment(request: pytest.FixtureRequest) -> Callable[[Record], None]:
    """Call with a Record to put it into the report (works under xdist)."""

    def record(experiment: Record) -> None:
        request.node.user_properties.append((RECORD_PROPERTY, experiment.to_dict()))

    return record


def _model_dir() -> Path:
    path = DeployOptions().model_dir
    if not (path / MANIFEST_NAME).is_file():
        pytest.skip(f"offline model missing at {path}: run `make model`")
    return path


@pytest.fixture(scope="session")
def resilience_subject(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Subject]:
    """A host deployed once for this worker's whole session; torn down at its end."""
    work = tmp_path_factory.mktemp("resilience")
    app_dir = snapshot_app(request.config.getoption("app") or DeployOptions().app_dir, work / "app")
    release = Release(_model_dir(), app_dir, work)
    target = request.config.getoption("resilience_target")
    with ExitStack() as stack:
        if target:
            cfg = _inventory_host(target, target)
            # Wipes and reboots of a real VM: its hosts.toml's commands, else skipped.
            subject = release.subject(cfg, machine=CommandMachine(cfg))
        else:
            subject = _testbed_subject(request, stack, release)
        stack.callback(subject.probe.close)
        run = subject.deploy(DeployRequest("initial deploy", accept_new_host_key=not target))
        if not run.ok:
            pytest.fail(f"initial deploy of {subject.target.name} failed: {run.error}")
        subject.system = host_system(subject.target.guest)
        yield subject


@dataclass(frozen=True)
class Release:
    """What the session deploys (model, app source snapshot) and its scratch dir."""

    model_dir: Path
    app_dir: Path
    work: Path

    def subject(
        self,
        cfg: HostConfig,
        machine: Machine | None = None,
        api: ApiSwitch | None = None,
        disposable: bool = False,
    ) -> Subject:
        return deployed_subject(
            cfg, self.model_dir, self.app_dir, self.work / "releases", machine, api, disposable
        )


def _testbed_subject(request: pytest.FixtureRequest, stack: ExitStack, release: Release) -> Subject:
    # Imported here, not at the top: pytest must be the first to import the testbed plugin
    # (through pytest_plugins above) so that it can rewrite the plugin's asserts.
    from mlopsdeploy.testbed.pytest_plugin import machine_name, skip_reason

    reason = skip_reason()
    if reason:
        pytest.skip(reason)
    vm = TestVM(machine_name(), request.getfixturevalue("testbed_image"))
    stack.callback(vm.destroy)
    vm.up()
    token = secrets.token_urlsafe(24)
    work = release.work
    token_file = work / "hf-token"
    token_file.touch(mode=0o600)
    token_file.write_text(token)
    standin = stack.enter_context(
        StandIn(host=vm.host_address, token=token, slow_seconds=API_SLOW_SECONDS)
    )
    cfg = HostConfig(
        name=vm.name,
        address=vm.address,
        own_key=ensure_keypair(work / "own-key"),
        user=vm.user,
        default_key=vm.default_key,
        api_model=standin.url,
        hf_token_file=token_file,
        known_hosts=work / "known_hosts",
    )
    return release.subject(cfg, vm, StandInSwitch(standin), disposable=True)


@pytest.fixture
def resilience_host(resilience_subject: Subject) -> Subject:
    """The session's host, in steady state (restored if an earlier experiment broke it)."""
    restore_steady_state(resilience_subject, CATALOGUE)
    return resilience_subject
