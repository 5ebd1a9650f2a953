from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import pytest

from mlopsdeploy.faults import (
    Fault,
    NotApplicable,
    Recovery,
    RollbackRelease,
    Service,
    Target,
    WhileActive,
)
from mlopsdeploy.resilience.experiment import (
    HELD_BACK,
    Deadlines,
    DeployRequest,
    restore_steady_state,
    run_experiment,
)
from mlopsdeploy.resilience.probes import Answer, poll
from mlopsdeploy.resilience.record import RecoveryPath

FAST = Deadlines(recover=5.0, api=2.0)


def _failed(record: Any) -> list[str]:
    return [f"{c.name}: {c.detail}" for c in record.checks if not c.ok]


def test_systemd_healing_alone_is_recorded_as_self_healed(world: Any) -> None:
    fault = world.fault(Recovery(self_heal_seconds=5), heal_after=3)
    record = run_experiment(fault, world.subject, FAST)
    assert record.verified, (record.error, _failed(record))
    assert record.recovery_path is RecoveryPath.SELF_HEALED is record.expected_path
    assert record.outage_seen and record.seconds_to_recover is not None
    assert world.deployer.purposes == ["idempotence"]
    assert fault.undone == 1


def test_a_fault_systemd_cannot_heal_is_redeployed(world: Any) -> None:
    record = run_experiment(world.fault(), world.subject, FAST)
    assert record.verified, (record.error, _failed(record))
    assert record.recovery_path is RecoveryPath.REDEPLOY
    assert world.deployer.purposes == ["recover", "idempotence"]
    assert record.recovery_deploy is not None and record.recovery_deploy.changed == ["App service"]


def test_a_fault_the_app_serves_through_is_still_repaired_by_a_deploy(world: Any) -> None:
    record = run_experiment(world.fault(Recovery(hidden=True), down=False), world.subject, FAST)
    assert record.verified, (record.error, _failed(record))
    assert record.recovery_path is RecoveryPath.REDEPLOY is record.expected_path
    assert world.deployer.purposes == ["recover", "idempotence"]


def _refused_until_a_new_key_is_accepted(world: Any) -> None:
    """The deployer refuses, as for a changed host key, until a request accepts a new one."""
    accepted: list[bool] = []

    def refuse(request: DeployRequest) -> str | None:
        accepted.append(request.accept_new_host_key)
        return None if any(accepted) else "host key changed"

    world.deployer.refuse = refuse


def test_a_wiped_vm_is_refused_without_the_option_then_recovered_with_it(world: Any) -> None:
    _refused_until_a_new_key_is_accepted(world)
    fault = world.fault(Recovery(accept_new_host_key=True))
    record = run_experiment(fault, world.subject, FAST)
    assert record.verified, (record.error, _failed(record))
    assert world.deployer.purposes == ["refused: changed host key", "recover", "idempotence"]
    assert world.deployer.requests[1].accept_new_host_key


FINGERPRINT = "SHA256:rulRQBWPTXlyIarVhNhLzObJWXOFIsHOXY+HVV3lsvg"


def _wiped_real_target(world: Any) -> Fault:
    """A vm-wipe of a host nobody vouches for: after the recovery its key stays unconfirmed."""
    _refused_until_a_new_key_is_accepted(world)
    world.subject.unconfirmed_host_key = lambda: FINGERPRINT
    return world.fault(Recovery(accept_new_host_key=True))


def test_a_wiped_real_target_is_verified_by_its_api_product_holding_the_token_back(
    world: Any,
) -> None:
    world.app.awaiting_trust = FINGERPRINT
    record = run_experiment(_wiped_real_target(world), world.subject, FAST)
    assert record.verified, (record.error, _failed(record))
    names = [check.name for check in record.checks]
    assert HELD_BACK in names and "API product answers" not in names
    assert record.unconfirmed_host_key == FINGERPRINT


def test_an_unconfirmed_host_whose_api_product_answers_fails(world: Any) -> None:
    """A completion means the token reached a host nobody identified."""
    record = run_experiment(_wiped_real_target(world), world.subject, FAST)
    assert not record.verified
    assert _failed(record) == [
        f"{HELD_BACK}: /api/generate answered 200: "
        '{"text":"Stand-in answer to: resilience check"}'
    ]


def test_a_failing_recovery_is_not_verified_and_still_undone(world: Any) -> None:
    world.deployer.refuse = lambda r: "disk on fire"
    fault = world.fault()
    record = run_experiment(fault, world.subject, FAST)
    assert not record.verified
    assert record.recovery_path is RecoveryPath.NOT_RECOVERED
    assert record.error is not None and "disk on fire" in record.error
    assert fault.undone == 1


def test_deploy_refused_while_disk_is_full_then_succeeds_after_freeing_it(world: Any) -> None:
    active = WhileActive(deploy_error="(?i)disk space", new_release=True, local_serves=True)
    fault = world.fault(Recovery(while_active=active), down=False)
    world.deployer.refuse = lambda r: "not enough disk space" if fault.undone == 0 else None
    record = run_experiment(fault, world.subject, FAST)
    assert record.verified, (record.error, _failed(record))
    assert record.recovery_path is RecoveryPath.REDEPLOY
    assert world.deployer.purposes == ["refused while the fault lasts", "recover", "idempotence"]
    tags = {request.release_tag for request in world.deployer.requests}
    assert len(tags) == 1 and None not in tags
    assert not record.outage_seen


def test_an_unclear_refusal_fails_its_check(world: Any) -> None:
    active = WhileActive(deploy_error="(?i)disk space", new_release=True)
    fault = world.fault(Recovery(while_active=active), down=False)
    world.deployer.refuse = lambda r: "step failed: Stage release" if fault.undone == 0 else None
    record = run_experiment(fault, world.subject, FAST)
    assert not record.verified
    assert _failed(record) == ["deploy refused with a clear error: step failed: Stage release"]


def test_api_outage_keeps_the_local_product_and_fails_clearly(world: Any) -> None:
    active = WhileActive(local_serves=True, api_error="api_timeout")
    recovery = Recovery(redeploy=False, self_heal_seconds=5, while_active=active)
    fault = world.fault(recovery, down=False, api_error="api_timeout")
    record = run_experiment(fault, world.subject, FAST)
    assert record.verified, (record.error, _failed(record))
    assert record.recovery_path is RecoveryPath.NOT_NEEDED is record.expected_path
    assert world.deployer.purposes == ["idempotence"]


def test_wrong_api_error_kind_fails_the_check(world: Any) -> None:
    active = WhileActive(local_serves=True, api_error="api_timeout")
    recovery = Recovery(redeploy=False, self_heal_seconds=5, while_active=active)
    fault = world.fault(recovery, down=False, api_error="api_unreachable")
    record = run_experiment(fault, world.subject, FAST)
    assert not record.verified
    assert _failed(record)[0].startswith("API product fails clearly (api_timeout): 502")


def test_wrong_labels_are_not_a_recovery(world: Any) -> None:
    world.app.wrong_labels = True
    record = run_experiment(world.fault(), world.subject, FAST)
    assert record.error is not None and record.error.startswith("steady state not met")
    assert world.deployer.requests == []


def test_a_failing_injection_is_recorded_and_undone(world: Any) -> None:
    fault = world.fault(explode="ssh: connection refused")
    record = run_experiment(fault, world.subject, FAST)
    assert record.error == "RuntimeError: ssh: connection refused"
    assert fault.undone == 1


def test_not_applicable_faults_touch_nothing(world: Any) -> None:
    fault = world.fault()
    fault.needs_machine = True
    with pytest.raises(NotApplicable):
        run_experiment(fault, world.subject, FAST)
    assert world.app.up and fault.undone == 0


def test_restore_redeploys_a_broken_host_and_gives_up_loudly(world: Any) -> None:
    fault = world.fault()
    world.app.up = False
    restore_steady_state(world.subject, (fault,), seconds=1)
    assert world.app.up and fault.undone == 1
    assert world.deployer.requests == [
        DeployRequest("restore steady state", accept_new_host_key=True)
    ]
    world.app.wrong_labels = True
    world.deployer.refuse = lambda r: "unreachable"
    with pytest.raises(RuntimeError, match="unreachable"):
        restore_steady_state(world.subject, (fault,), seconds=0.2)


def test_a_fault_only_systemd_could_heal_is_reported_when_it_does_not(world: Any) -> None:
    fault = world.fault(Recovery(self_heal_seconds=0.3, redeploy=False))
    record = run_experiment(fault, world.subject, FAST)
    assert record.recovery_path is RecoveryPath.NOT_RECOVERED
    assert record.error is not None
    assert record.error.startswith("not recovered: systemd did not heal it within 0.3s")
    assert world.deployer.requests == []


@dataclass
class DropsRequests(Fault):
    """Makes the app fail the client load's next `dropped` requests; ends 3 requests later."""

    app: Any  # conftest's FakeApp
    dropped: int
    until: int = 0

    name = "drops-requests"
    breaks = "the next requests answered 503"
    recovery = Recovery(redeploy=False, while_active=WhileActive(local_serves=True))
    lossless = True

    def inject(self, target: Target) -> None:
        self.app.failing = self.dropped
        self.until = self.app.singles + self.dropped + 3

    def undo(self, target: Target) -> None:
        reached = lambda: Answer(None if self.app.singles >= self.until else "waiting")  # noqa: E731
        assert poll(reached, 30.0).ok, "the client load did not reach the app"


def test_a_lossless_fault_passes_when_the_load_lost_nothing(served_world: Any) -> None:
    record = run_experiment(DropsRequests(served_world.app, 0), served_world.subject, FAST)
    assert record.verified, (record.error, _failed(record))
    assert record.load is not None and record.load["requests"] > 0
    assert "no request failed after the fault took effect" in [c.name for c in record.checks]


def test_a_lossless_fault_fails_when_a_request_after_it_failed(served_world: Any) -> None:
    record = run_experiment(DropsRequests(served_world.app, 3), served_world.subject, FAST)
    assert not record.verified
    (failed,) = _failed(record)
    assert failed.startswith("no request failed after the fault took effect: ")
    assert "http 503" in failed


@dataclass
class ReleaseLinks:
    """The guest of the world's host: `previous` exists once a second release was deployed."""

    deployer: Any  # conftest's FakeDeployer
    commands: list[str] = field(default_factory=list)

    def sh(self, command: str) -> str:
        self.commands.append(command)
        if command.startswith("readlink"):
            return "releases/r-1\n" if len(self.deployer.releases) > 1 else ""
        return ""


def _cold_workers(world: Any, disposable: bool) -> ReleaseLinks:
    """The world's host as a cold deploy leaves it: two workers, one release, no `previous`."""
    links = ReleaseLinks(world.deployer)
    workers = ("mlopsdeploy@1.service", "mlopsdeploy@2.service")
    world.subject.target = replace(
        world.subject.target,
        guest=links,
        service=Service("mlopsdeploy.target", 8000, workers=workers),
    )
    world.subject.disposable = disposable
    return links


def test_rollback_on_a_disposable_host_deploys_the_release_it_goes_back_from(world: Any) -> None:
    links = _cold_workers(world, disposable=True)
    record = run_experiment(RollbackRelease(), world.subject, FAST)
    assert record.verified, (record.error, _failed(record))
    assert world.deployer.purposes == ["a release to go back from", "idempotence"]
    assert world.deployer.requests[0].release_tag is not None  # a new release, not a no-op
    assert record.deploys[0].changed == ["Stage release"]
    swaps = [c for c in links.commands if "mv -T" in c]
    assert len(swaps) == 2  # rolled back, then forward again
    # The next time the host has a previous release: nothing more is deployed for it.
    again = run_experiment(RollbackRelease(), world.subject, FAST)
    assert again.verified, (again.error, _failed(again))
    assert world.deployer.purposes[2:] == ["idempotence"]


def test_rollback_on_a_users_host_without_a_previous_release_skips(world: Any) -> None:
    links = _cold_workers(world, disposable=False)
    with pytest.raises(NotApplicable, match="vm1 has no previous release"):
        run_experiment(RollbackRelease(), world.subject, FAST)
    assert world.deployer.requests == []
    assert all(c.startswith("readlink") for c in links.commands)


def test_a_failed_deploy_of_the_release_to_go_back_from_fails_loudly(world: Any) -> None:
    links = _cold_workers(world, disposable=True)
    world.deployer.refuse = lambda request: "no space left"
    with pytest.raises(RuntimeError, match="no space left"):
        run_experiment(RollbackRelease(), world.subject, FAST)
    assert all(c.startswith("readlink") for c in links.commands)  # nothing was swapped
