"""The plugin in a real pytest run (a subprocess), with and without xdist workers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

RECORDING_TESTS = """
import pytest
from mlopsdeploy.resilience.record import Record, RecoveryPath

@pytest.mark.parametrize("n", range(4))
def test_record(n, record_experiment):
    record_experiment(Record(
        fault=f"fault-{n % 2}", target="vm", started_at="now",
        recovery_path=RecoveryPath.SELF_HEALED, seconds_to_recover=float(n),
    ))

def test_without_record():
    pass
"""


def _pytest(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "test_recording.py").write_text(RECORDING_TESTS)
    hosts = tmp_path / "hosts.toml"
    hosts.write_text('[hosts.myvm]\naddress = "10.213.9.2"\nown_key = "/nonexistent"\n')
    return subprocess.run(
        [
            *(sys.executable, "-m", "pytest", "-p", "mlopsdeploy.resilience.pytest_plugin"),
            *("-p", "no:cacheprovider", "-q", "--rootdir", str(tmp_path), *args),
        ],
        cwd=tmp_path,
        env={**os.environ, "MLOPSDEPLOY_CONFIG": str(hosts)},
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["in-process", "xdist"])
def test_every_record_reaches_one_report(tmp_path: Path, workers: list[str]) -> None:
    out = tmp_path / "reports"
    result = _pytest(tmp_path, "--resilience-report-dir", str(out), *workers)
    assert result.returncode == 0, result.stdout + result.stderr
    document = json.loads((out / "resilience-report.json").read_text())
    assert sorted(r["seconds_to_recover"] for r in document["records"]) == [0.0, 1.0, 2.0, 3.0]
    assert "resilience report" in result.stdout
    assert any(line.startswith("fault-0") for line in result.stdout.splitlines())
    # Each fault's result as it finishes, before the report at the end.
    progress = result.stdout.index("[resilience] fault-1 on vm: recovered (self-healed) in 3.0 s")
    assert progress < result.stdout.index("resilience report")
    assert (out / "resilience-report.md").is_file() and (out / "resilience-report.png").is_file()


def test_a_real_target_must_be_confirmed_by_name(tmp_path: Path) -> None:
    result = _pytest(tmp_path, "--resilience-target=myvm", "--i-know-this-wipes=othervm")
    assert result.returncode == 4
    assert "confirm with --i-know-this-wipes=myvm" in result.stderr


def test_a_real_target_must_be_in_the_users_hosts(tmp_path: Path) -> None:
    result = _pytest(tmp_path, "--resilience-target=yourvm", "--i-know-this-wipes=yourvm")
    assert result.returncode == 4
    assert "--resilience-target=yourvm: not in your hosts ['myvm']" in result.stderr


def test_a_bad_app_spec_is_a_usage_error_naming_file_and_key(tmp_path: Path) -> None:
    app = tmp_path / "my-app"
    app.mkdir()
    (app / "mlopsdeploy.toml").write_text('[start]\napp = "app:demo"\nport = 1\n')
    result = _pytest(tmp_path, "--app", str(app))
    assert result.returncode == 4
    assert f"--app: {app}/mlopsdeploy.toml: start.port: unknown key" in result.stderr


def test_with_an_app_only_the_faults_any_app_must_survive_run(tmp_path: Path) -> None:
    example = Path(__file__).resolve().parents[4] / "examples" / "gradio-app"
    recovery = Path(__file__).resolve().parents[4] / "tests" / "resilience" / "test_recovery.py"
    (tmp_path / "test_recovery.py").write_text(recovery.read_text())
    result = _pytest(tmp_path, "--app", str(example), "--collect-only", "test_recovery.py")
    lines = result.stdout.splitlines()
    collected = [line.split("[")[1].rstrip("]") for line in lines if "[" in line]
    assert collected == ["sigkill", "home-wipe", "vm-wipe"], result.stdout + result.stderr


EXPERIMENTS_ON_ONE_HOST = """
import os
import pytest

@pytest.mark.resilience
@pytest.mark.parametrize("n", range(6))
def test_experiment(n):
    with open("workers.txt", "a") as seen:
        seen.write(os.environ["PYTEST_XDIST_WORKER"] + "\\n")
"""


def test_experiments_on_a_real_target_take_turns_on_one_xdist_worker(tmp_path: Path) -> None:
    # Two workers breaking the same host at once would each see the other's fault. pytest-xdist
    # 3.8's loadgroup silently stops grouping on pytest 9.2 (pytest-dev/pytest-xdist#1386).
    (tmp_path / "test_experiments.py").write_text(EXPERIMENTS_ON_ONE_HOST)
    target = ("--resilience-target=myvm", "--i-know-this-wipes=myvm")
    result = _pytest(tmp_path, *target, "-n", "2", "--dist", "loadgroup", "test_experiments.py")
    assert result.returncode == 0, result.stdout + result.stderr
    workers = (tmp_path / "workers.txt").read_text().split()
    assert len(workers) == 6 and len(set(workers)) == 1, workers
