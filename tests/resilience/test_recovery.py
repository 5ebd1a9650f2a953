"""Every catalogued fault, injected into a deployed host: it must come back, and work.

Each test: steady state (readyz 200, right labels) → inject → recovery (systemd alone where the
fault expects that, else the deploy re-run with the options the fault needs) → verify (labels
for the canaries and a dozen everyday sentences, the API product, the default key rejected, a
further deploy with no changes) → record for the report. Run: `pytest -m resilience -n 2`.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from mlopsdeploy.faults import CATALOGUE, Fault, NotApplicable
from mlopsdeploy.resilience import Record, Subject, run_experiment
from mlopsdeploy.resilience.pytest_plugin import APP_FAULTS
from mlopsdeploy.resilience.record import RecoveryPath

pytestmark = pytest.mark.resilience


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """One test per fault, or `--resilience-repeat N` runs of each (ids `<fault>-<run>`).

    With `--app DIR` (your own app) only the faults any app must survive run.
    """
    if "fault" not in metafunc.fixturenames:
        return
    runs = metafunc.config.getoption("resilience_repeat")
    own_app = metafunc.config.getoption("app") is not None
    params = [
        pytest.param(fault, id=fault.name if runs == 1 else f"{fault.name}-{run}")
        for fault in CATALOGUE
        if not own_app or fault.name in APP_FAULTS
        for run in range(1, runs + 1)
    ]
    metafunc.parametrize("fault", params)


def test_recovers_and_works(
    fault: Fault, resilience_host: Subject, record_experiment: Callable[[Record], None]
) -> None:
    try:
        record = run_experiment(fault, resilience_host)
    except NotApplicable as reason:
        pytest.skip(str(reason))
    record_experiment(record)
    failed = [f"{check.name}: {check.detail}" for check in record.checks if not check.ok]
    assert record.verified, f"{fault.name}: {record.error or ''} {failed}"
    acceptable = {record.expected_path}
    if record.expected_path is RecoveryPath.SELF_HEALED:
        # Other workers may cover the fault so well that no probe sees an outage: better still.
        acceptable.add(RecoveryPath.NOT_NEEDED)
    assert record.recovery_path in acceptable, (
        f"{fault.name} recovered by {record.recovery_path}, expected {record.expected_path}"
    )
