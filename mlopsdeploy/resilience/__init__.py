"""Resilience experiments: break a deployed host with a catalogued fault, watch it recover,
verify it really works again, and write the evidence (see docs/resilience.md).

Example::

    subject = deployed_subject(
        host_config, model_dir, app_dir, scratch_dir, machine=test_vm, disposable=True
    )
    record = run_experiment(by_name("sigkill"), subject)
    record.recovery_path, record.seconds_to_recover, record.verified
"""

from mlopsdeploy.resilience.experiment import (
    Deadlines,
    DeployRequest,
    Subject,
    expected_path,
    restore_steady_state,
    run_experiment,
)
from mlopsdeploy.resilience.probes import PROBE_SENTENCES, AppProbe
from mlopsdeploy.resilience.record import Check, DeployRun, Record, RecoveryPath
from mlopsdeploy.resilience.report import write_report
from mlopsdeploy.resilience.subjects import (
    HttpStandInSwitch,
    LibraryDeployer,
    SshGuest,
    StandInSwitch,
    deployed_subject,
)

__all__ = [
    "PROBE_SENTENCES",
    "AppProbe",
    "Check",
    "Deadlines",
    "DeployRequest",
    "DeployRun",
    "HttpStandInSwitch",
    "LibraryDeployer",
    "Record",
    "RecoveryPath",
    "SshGuest",
    "StandInSwitch",
    "Subject",
    "deployed_subject",
    "expected_path",
    "restore_steady_state",
    "run_experiment",
    "write_report",
]
