"""Checking a running app against its own OpenAPI schema with schemathesis.

The unit tests run it in-process (ASGI) with every phase; the VM tests run a short, bounded pass
over HTTP against a deployed testbed VM, so the schema the VM serves is the one it keeps.
"""

from __future__ import annotations

import schemathesis
from schemathesis.engine import events


def contract_failures(schema: schemathesis.BaseSchema) -> list[str]:
    """Run schemathesis over `schema` (all phases, default checks); one line per failure."""
    failures = []
    for event in schemathesis.engine.from_schema(schema).execute():
        if isinstance(event, events.ScenarioFinished):
            for checks in event.recorder.checks.values():
                for check in checks:
                    if check.failure_info is not None:
                        failure = check.failure_info.failure
                        failures.append(f"{event.label}: {failure.title}: {failure.message}")
        elif isinstance(event, events.NonFatalError | events.FatalError):
            failures.append(repr(event))
    return sorted(set(failures))
