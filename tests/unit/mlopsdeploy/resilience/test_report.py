from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

from matplotlib.image import imread

from mlopsdeploy.resilience.record import Check, DeployRun, Record, RecoveryPath
from mlopsdeploy.resilience.report import summarize, text_table, write_report


def _record(fault: str, seconds: float | None, path: RecoveryPath, ok: bool = True) -> Record:
    return Record(
        fault=fault,
        target="vm1",
        started_at="2026-11-22T23:00:00+00:00",
        recovery_path=path,
        expected_path=RecoveryPath.SELF_HEALED if fault == "sigkill" else RecoveryPath.REDEPLOY,
        seconds_to_recover=seconds,
        deploys=[DeployRun("recover", True, 20.0, changed=["Runtime venv", "App service"])]
        if path is RecoveryPath.REDEPLOY
        else [],
        checks=[Check("shared default key rejected", ok, "" if ok else "default key logs in")],
    )


LOAD = {
    "requests": 400,
    "failed_after_fault": 0,
    "failed_in_flight": 2,
    "failed_before": 0,
    "longest_gap_s": 0.25,
    "p99_latency_s": 0.4,
    "failures": {"reset": 2},
}
RECORDS = [
    replace(_record("sigkill-worker", 0.0, RecoveryPath.NOT_NEEDED), load=LOAD),
    _record("sigkill", 3.0, RecoveryPath.SELF_HEALED),
    _record("sigkill", 5.0, RecoveryPath.SELF_HEALED),
    _record("sigkill", 4.5, RecoveryPath.REDEPLOY),
    _record("vm-wipe", 31.0, RecoveryPath.REDEPLOY, ok=False),
]


def test_records_survive_the_trip_through_plain_data() -> None:
    for record in RECORDS:
        data = json.loads(json.dumps(record.to_dict()))
        assert Record.from_dict(data) == record
        assert data["verified"] is record.verified


def test_summary_has_medians_paths_and_unexpected_paths_flagged() -> None:
    worker, sigkill, wipe = summarize(RECORDS)
    assert (sigkill.fault, sigkill.runs, sigkill.median, sigkill.verified) == ("sigkill", 3, 4.5, 3)
    assert sigkill.path == "self-healed / redeploy (expected: self-healed)"
    assert wipe.cells() == ["vm-wipe", "redeploy", "31.0", "≤ 35", "—", "—", "—", "—", "2", "0/1"]
    # What the client load saw sits beside the recovery time.
    assert worker.cells()[4:8] == ["0", "2", "0.25", "0.40"]


def test_text_table_is_aligned() -> None:
    lines = text_table(summarize(RECORDS))
    assert lines[0].startswith("fault")
    column = lines[0].index("recovery path")
    assert all(line[column - 2 : column] == "  " for line in lines)


def test_report_files_hold_table_chart_failures_and_environment(tmp_path: Path) -> None:
    written = write_report(RECORDS, tmp_path / "out")
    assert [p.name for p in written] == [
        "resilience-report.json",
        "resilience-report.md",
        "resilience-report.png",
    ]
    document = json.loads(written[0].read_text())
    assert len(document["records"]) == 5
    assert document["summary"][1] == {
        "fault": "sigkill", "runs": 3, "median_seconds": 4.5, "verified": 3,
    }  # fmt: skip
    assert document["summary"][0]["median_failed_in_flight"] == 2
    assert document["records"][0]["load"]["longest_gap_s"] == 0.25
    assert document["environment"]["cpus"] >= 1
    assert "pyinfra" in document["environment"]["packages"]
    markdown = written[1].read_text()
    assert "| vm-wipe | redeploy | 31.0 | ≤ 35 | — | — | — | — | 2 | 0/1 |" in markdown
    assert "| 0 | 2 | 0.25 | 0.40 |" in markdown
    assert "**vm-wipe** on vm1: shared default key rejected: default key logs in" in markdown
    assert "![recovery time per fault](resilience-report.png)" in markdown
    assert "- **vm-wipe**: the whole VM back to its pristine image" in markdown
    assert [entry["name"] for entry in document["faults"]] == [
        "sigkill-worker",
        "sigkill",
        "vm-wipe",
    ]
    height, width, _ = imread(written[2]).shape
    assert width == 800 and height > 200


def test_report_names_each_targets_system(tmp_path: Path) -> None:
    trixie = "Debian GNU/Linux 13 (trixie), Python 3.13.5"
    records = [replace(RECORDS[1], target="t13", system=trixie), RECORDS[2]]
    markdown = write_report(records, tmp_path)[1].read_text()
    assert f"Targets: t13: {trixie}; vm1: system not read" in markdown
    document = json.loads((tmp_path / "resilience-report.json").read_text())
    assert document["records"][0]["system"] == trixie


def test_report_says_which_hosts_got_no_token_and_how_to_give_it(tmp_path: Path) -> None:
    """A verified row alone would read as "the API product works" on a host it refuses on."""
    fingerprint = "SHA256:rulRQBWPTXlyIarVhNhLzObJWXOFIsHOXY+HVV3lsvg"
    held = replace(RECORDS[1], fault="vm-wipe", target="team10", unconfirmed_host_key=fingerprint)
    assert Record.from_dict(json.loads(json.dumps(held.to_dict()))) == held
    markdown = write_report([held, RECORDS[2]], tmp_path)[1].read_text()
    section = markdown.split("## Token held back\n\n")[1].split("\n\n")[0]
    assert section.startswith(f"- **vm-wipe** on team10: its new host key {fingerprint} was")
    assert section.endswith("and run `mlopsdeploy trust team10`")
    assert section.count("\n- ") == 0  # the sigkill run on a confirmed host is not listed
    assert "## Token held back" not in write_report(RECORDS, tmp_path / "all")[1].read_text()
