"""The incident journal: JSON lines, last line per incident wins, a readable summary."""

from __future__ import annotations

import json
from pathlib import Path

from mlopsdeploy.watchdog.journal import NO_ACTION, Incident, Journal, Step, summarise


def test_journal_keeps_the_latest_state_of_each_incident(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j" / "incidents.jsonl")
    incident = Incident("vm1", "connection refused", detected_at=100.0, last_ok_at=98.5)
    journal.record("detected", incident)
    incident.steps.append(Step(101.0, "restart", "stopped", "ok", 1.5))
    incident.recovered_at = 110.0
    journal.record("recovered", incident)
    lines = [json.loads(line) for line in journal.path.read_text().splitlines()]
    assert [line["event"] for line in lines] == ["detected", "recovered"]
    assert lines[-1]["seconds_to_detect"] == 1.5
    assert lines[-1]["seconds_to_recover"] == 10.0
    (loaded,) = journal.incidents()
    assert loaded == incident
    assert loaded.state == "recovered"
    assert journal.action_times("vm1") == [101.0]
    assert journal.action_times("vm2") == []


def test_waits_and_giving_up_are_not_counted_as_repairs() -> None:
    incident = Incident("vm1", "503", 1.0, None)
    incident.steps += [
        Step(1.0, NO_ACTION, "systemd is restarting it", "no action needed"),
        Step(2.0, "redeploy", "unit missing", "failed: gate"),
        Step(3.0, "give_up", "limit", "gave up; still probing"),
    ]
    assert [s.action for s in incident.actions] == ["redeploy"]
    assert incident.seconds_to_detect is None


def test_summary_gives_counts_medians_and_recent_incidents() -> None:
    healed = Incident("vm1", "refused", 100.0, 99.0, "ssh ok", recovered_at=104.0)
    healed.steps.append(Step(100.0, NO_ACTION, "systemd is restarting it", "no action needed"))
    repaired = Incident("vm1", "timeout", 200.0, 197.0, "pid state T", recovered_at=220.0)
    repaired.steps.append(Step(201.0, "restart", "stopped", "ok", 1.0))
    stuck = Incident("vm2", "canary wrong", 300.0, 299.0, gave_up_at=400.0)
    text = summarise([healed, repaired, stuck])
    assert "vm1: 2 incidents (2 recovered, 0 open, 0 given up), 1 repairs" in text
    assert "median detect 2.0s, median recover 12.0s" in text
    assert "vm2: 1 incidents (0 recovered, 0 open, 1 given up)" in text
    assert "none (no action needed)" in text
    assert summarise([]) == "no incidents recorded"
