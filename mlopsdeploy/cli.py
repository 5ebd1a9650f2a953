"""``mlopsdeploy``: deploy, rollback, demo, and the testbed/watchdog tools under one command.

mlopsdeploy demo                  boot the local testbed VM, deploy, print URL + a prediction
mlopsdeploy deploy [--host NAME]  deploy to the configured hosts (default: the testbed VM)
mlopsdeploy rollback [--host NAME]
mlopsdeploy testbed ...           local test VMs (see docs/testbed.md)
mlopsdeploy watch ...             the watchdog (see docs/watchdog.md)
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path

import httpx

from mlopsdeploy.config import ConfigError, HostConfig, load_hosts
from mlopsdeploy.deployment.api import deploy, rollback
from mlopsdeploy.deployment.results import DeployOptions, DeployResult, HostResult

SAMPLE = "I am so happy today!"


def _print_host(result: HostResult) -> None:
    status = "OK" if result.ok else "FAILED"
    print(f"{result.host}: {status}  {result.url}  release {result.release or '-'}")
    if result.changed:
        print("  changed: " + ", ".join(result.changed))
    elif result.ok:
        print("  no changes (host was already right)")
    timings = ", ".join(f"{phase} {seconds:.1f}s" for phase, seconds in result.timings.items())
    print(f"  timings: {timings}")
    if result.error is not None:
        print(f"  error: {result.error}", file=sys.stderr)


def _report(result: DeployResult, as_json: bool) -> int:
    if as_json:
        print(json.dumps([_as_dict(h) for h in result.hosts], indent=2))
    else:
        for host in result.hosts:
            _print_host(host)
    return 0 if result.ok else 1


def _as_dict(result: HostResult) -> dict:
    return {
        "host": result.host,
        "ok": result.ok,
        "url": result.url,
        "release": result.release,
        "model_version": result.model_version,
        "changed": result.changed,
        "steps": [vars(step) for step in result.steps],
        "timings": result.timings,
        "error": str(result.error) if result.error else None,
    }


def _targets(args: argparse.Namespace) -> tuple[list[HostConfig], bool]:
    """Configured hosts (filtered by --host), else the testbed demo VM (booted if needed).

    The flag says whether the demo VM was created just now, whose new host key is then expected.
    """
    hosts = load_hosts()
    if not hosts:
        from mlopsdeploy.testbed.target import demo_vm, testbed_host

        vm, created = demo_vm()
        return [testbed_host(vm, api_model=args.api_model)], created
    if args.host:
        hosts = [h for h in hosts if h.name in args.host]
        unknown = set(args.host) - {h.name for h in hosts}
        if unknown:
            raise ConfigError(f"no configured host named {sorted(unknown)}")
    if args.api_model:
        hosts = [replace(h, api_model=args.api_model) for h in hosts]
    return hosts, False


def _options(args: argparse.Namespace, fresh_vm: bool = False) -> DeployOptions:
    options = DeployOptions(
        accept_new_host_key=args.accept_new_host_key or fresh_vm,
        gate_timeout=args.gate_timeout,
        output=not args.quiet,
    )
    return replace(options, model_dir=args.model) if args.model else options


def _predict(url: str) -> str:
    answer = httpx.post(f"{url}/api/sentiment", json={"text": SAMPLE}, timeout=30).json()
    return f"{SAMPLE!r} -> {answer['label']} ({answer['score']:.3f})"


def cmd_deploy(args: argparse.Namespace) -> int:
    hosts, fresh = _targets(args)
    return _report(deploy(hosts, _options(args, fresh)), args.json)


def cmd_rollback(args: argparse.Namespace) -> int:
    hosts, fresh = _targets(args)
    return _report(rollback(hosts, _options(args, fresh)), args.json)


def cmd_demo(args: argparse.Namespace) -> int:
    args.host = None
    hosts, fresh = _targets(args)
    result = deploy(hosts, _options(args, fresh))
    code = _report(result, as_json=False)
    for host in result.hosts:
        if host.ok:
            print(f"\nThe app is up: {host.url}  (UI at /, API at /api/sentiment)")
            print(_predict(host.url))
    return code


def _delegate(module: str, argv: list[str]) -> int:
    import importlib

    return int(importlib.import_module(module).main(argv))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mlopsdeploy", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name, func, text in (
        ("deploy", cmd_deploy, "deploy app + model to the configured hosts"),
        ("rollback", cmd_rollback, "serve each host's previous release again"),
        ("demo", cmd_demo, "deploy to the local testbed VM and print URL + one prediction"),
    ):
        p = sub.add_parser(name, help=text)
        p.set_defaults(func=func)
        if name != "demo":
            p.add_argument("--host", action="append", help="only this configured host (repeatable)")
            p.add_argument("--json", action="store_true", help="print the result as JSON")
        p.add_argument(
            "--accept-new-host-key",
            action="store_true",
            help="the VM was re-imaged: trust its new SSH host key and record it",
        )
        p.add_argument(
            "--model", type=Path, help="model dir with manifest.json (default build/model)"
        )
        p.add_argument("--api-model", help="Inference API model id or URL for the API product")
        p.add_argument("--gate-timeout", type=float, default=120.0, help="seconds (default 120)")
        p.add_argument("--quiet", action="store_true", help="hide pyinfra's per-operation log")
    sub.add_parser("testbed", help="local test VMs (python -m mlopsdeploy.testbed --help)")
    sub.add_parser("watch", help="the watchdog (python -m mlopsdeploy.watchdog --help)")
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["testbed"]:
        return _delegate("mlopsdeploy.testbed.cli", argv[1:])
    if argv[:1] == ["watch"]:
        return _delegate("mlopsdeploy.watchdog.cli", argv[1:])
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except (ConfigError, ValueError) as e:
        print(f"mlopsdeploy: {e}", file=sys.stderr)
        return 2
