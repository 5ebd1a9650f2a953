"""What the client load reports: failures split at the fault, the longest gap, p99 latency."""

from __future__ import annotations

from mlopsdeploy.resilience.load import Attempt, summarize


def test_failures_are_split_at_the_fault_and_none_is_hidden() -> None:
    attempts = [
        Attempt(0.0, 0.1),
        Attempt(0.9, 1.2, "reset"),  # in flight on the killed worker at t=1.0
        Attempt(1.1, 1.3, "refused"),  # started after the fault: a failure users saw
        Attempt(1.2, 1.4),
        Attempt(1.5, 3.5),  # waited in the backlog, then answered right
        Attempt(3.6, 3.7, "wrong label"),
    ]
    report = summarize(attempts, fault_at=1.0, until=4.0)
    assert (report.requests, report.failed_in_flight, report.failed_after_fault) == (6, 1, 2)
    assert report.failed_before == 0
    assert report.longest_gap_s == 2.1  # 1.4 -> 3.5 without a correct answer
    assert report.p99_latency_s == 2.0
    assert report.failures == {"reset": 1, "refused": 1, "wrong label": 1}


def test_no_correct_answer_after_the_fault_is_one_gap_over_the_whole_window() -> None:
    report = summarize([Attempt(0.0, 0.1), Attempt(2.0, 2.1, "timeout")], 1.0, 6.0)
    assert report.longest_gap_s == 5.0
    assert report.failed_after_fault == 1
