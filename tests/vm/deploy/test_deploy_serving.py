"""Cold deploy to a pristine VM, then what a user relies on: labels, no-op re-runs, lockout,
secrecy of the token, the API product, the UI in a browser, the OpenAPI contract, the gate
refusing a bad model, and rollback.

The tests share one deployed VM and run in file order on one xdist worker: each later test
starts from the state the earlier ones leave, as a user's successive deploys do.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import redirect_stderr
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
import schemathesis
from browser import visit
from deploy_helpers import Control, classify, model_variant, remote, served_model_version
from playwright.sync_api import expect

from mlopsdeploy.config import HostConfig
from mlopsdeploy.deployment.api import deploy, rollback
from mlopsdeploy.deployment.control.ssh_login import key_logs_in
from mlopsdeploy.deployment.results import HostResult
from mlopsdeploy.testbed import TestVM
from mlopsdeploy.testing.contract import contract_failures
from mlopsdeploy.testing.standin import StandIn

pytestmark = [pytest.mark.vm, pytest.mark.xdist_group("deploy-serving")]

WORKER_PIDS = "systemctl --user show -p MainPID --value mlopsdeploy@1 mlopsdeploy@2"
SENTENCES = {
    "I am so happy today!": "POSITIVE",
    "This is the worst day ever.": "NEGATIVE",
    "I love this product, it works perfectly.": "POSITIVE",
    "The service was terrible and the staff were rude.": "NEGATIVE",
}


@dataclass
class Served:
    vm: TestVM
    cfg: HostConfig
    control: Control
    standin: StandIn
    model_dir: Path
    first: HostResult
    output: str


@pytest.fixture(scope="module")
def served(module_vm: TestVM, control: Control, sentiment_model_dir: Path) -> Iterator[Served]:
    with StandIn(host=module_vm.host_address, token=control.token) as standin:
        cfg = control.host(module_vm, api_model=standin.url)
        output = io.StringIO()
        with redirect_stderr(output):
            result = deploy([cfg], control.options(sentiment_model_dir, output=True))
        yield Served(
            module_vm,
            cfg,
            control,
            standin,
            sentiment_model_dir,
            result.hosts[0],
            output.getvalue(),
        )


def test_cold_deploy_serves_correct_labels(served: Served) -> None:
    assert served.first.ok, served.first.error
    assert "mlopsdeploy | Runtime venv" in served.first.changed
    assert classify(served.cfg, list(SENTENCES)) == list(SENTENCES.values())


def test_second_run_changes_nothing(served: Served) -> None:
    pid_before = remote(served.vm, served.control, WORKER_PIDS)
    again = deploy([served.cfg], served.control.options(served.model_dir)).hosts[0]
    assert again.ok, again.error
    assert again.changed == []
    pid_after = remote(served.vm, served.control, WORKER_PIDS)
    assert pid_after == pid_before  # not restarted


def test_default_key_is_rejected_own_key_works(served: Served) -> None:
    assert served.cfg.default_key is not None
    assert not key_logs_in(served.cfg, served.cfg.default_key)
    refused = served.vm.run("true", check=False)  # the testbed logs in with the default key
    assert refused.returncode == 255 and "Permission denied" in refused.stderr
    assert key_logs_in(served.cfg, served.control.key)


def test_token_file_is_private_and_token_appears_nowhere_else(served: Served) -> None:
    token = served.control.token
    assert remote(served.vm, served.control, "stat -c %a ~/mlopsdeploy/app.env").strip() == "600"
    processes = remote(served.vm, served.control, "sudo -n ps -eo args")
    journal = remote(served.vm, served.control, "sudo -n journalctl --no-pager -o cat")
    assert "-m app" in processes and "uvicorn" in journal.lower()  # looked in the right places
    assert token not in processes
    assert token not in journal
    assert "Token file (0600)" in served.output
    assert token not in served.output


def test_api_product_answers_through_the_standin(served: Served) -> None:
    before = served.standin.requests
    answer = httpx.post(
        f"{served.cfg.url}/api/generate", json={"prompt": "Say something kind"}, timeout=60
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["text"].strip()
    # The stand-in demands the token: a 200 proves the 0600 file reached the app.
    assert served.standin.requests > before


def test_the_ui_works_in_a_browser_and_asks_no_outside_host(served: Served) -> None:
    with visit(served.cfg.url, "deployed-ui") as ui:
        page = ui.page
        page.get_by_label("Text").fill("I love this product, it works perfectly.")
        page.get_by_role("button", name="Analyze").click()
        label = page.get_by_test_id("label-output-value")
        expect(label).to_have_text("POSITIVE")
        page.get_by_role("button", name="This is the worst day ever.").click()  # an example
        expect(page.get_by_label("Text")).to_have_value("This is the worst day ever.")
        page.get_by_role("button", name="Analyze").click()
        expect(label).to_have_text("NEGATIVE")
        page.get_by_role("tab", name="Generate Positive Thought (API Model)").click()
        page.get_by_label("Prompt (optional)").fill("Name a colour.")
        page.get_by_role("button", name="Generate").click()
        expect(page.get_by_label("Answer")).to_have_value("Stand-in answer to: Name a colour.")
        docs = page.context.new_page()
        docs.goto(f"{served.cfg.url}/docs")
        expect(docs.locator('[data-path="/api/sentiment"]')).to_be_visible()
    assert ui.outside == []
    assert {urlsplit(url).netloc for url in ui.seen} == {ui.origin}


def test_the_deployed_app_keeps_its_openapi_contract(served: Served) -> None:
    schema = schemathesis.openapi.from_url(f"{served.cfg.url}/openapi.json")
    # Short and bounded: the unit tests run the long pass in-process.
    schema.config.generation.update(max_examples=10)
    schema.config.update(request_timeout=60)
    assert contract_failures(schema) == []


def test_bad_model_is_refused_and_old_release_keeps_serving(served: Served, tmp_path: Path) -> None:
    version = served_model_version(served.cfg)
    current = remote(served.vm, served.control, "readlink ~/mlopsdeploy/current")
    workers = remote(served.vm, served.control, WORKER_PIDS)
    bad = model_variant(served.model_dir, tmp_path / "bad", "swapped-labels", swap_labels=True)
    result = deploy([served.cfg], served.control.options(bad, gate_timeout=90)).hosts[0]
    assert not result.ok
    assert result.error is not None
    message = str(result.error).splitlines()[0]  # journal lines may follow
    assert message.startswith(f"{served.cfg.name}: release ")
    assert " (model swapped-labels) refused by the health gate: " in message
    assert message.endswith("; the serving release was left untouched")
    assert remote(served.vm, served.control, "readlink ~/mlopsdeploy/current") == current
    assert remote(served.vm, served.control, WORKER_PIDS) == workers  # none restarted
    assert served_model_version(served.cfg) == version
    assert classify(served.cfg, list(SENTENCES)) == list(SENTENCES.values())


def test_rollback_serves_the_previous_release(served: Served, tmp_path: Path) -> None:
    first_version = served_model_version(served.cfg)
    newer = model_variant(served.model_dir, tmp_path / "newer", first_version + "-next")
    updated = deploy([served.cfg], served.control.options(newer)).hosts[0]
    assert updated.ok, updated.error
    assert served_model_version(served.cfg) == first_version + "-next"
    back = rollback([served.cfg], served.control.options(served.model_dir)).hosts[0]
    assert back.ok, back.error
    assert served_model_version(served.cfg) == first_version
    assert classify(served.cfg, list(SENTENCES)) == list(SENTENCES.values())
