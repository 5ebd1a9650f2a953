"""``mlopsdeploy``: deploy, rollback, demo, and the testbed/watchdog tools under one command.

mlopsdeploy demo                  boot the local testbed VM, deploy, print an answer of each product
mlopsdeploy deploy [--host NAME]  deploy to the configured hosts (default: the testbed VM)
             [--batches 1,25%,100%] [--max-fail N|P%] [--rollback-failed]   rolling release
mlopsdeploy rollback [--host NAME]
mlopsdeploy status [--json]       release, model, workers, /readyz, last deploy, LB view per host
mlopsdeploy trust NAME           confirm a re-imaged host's new SSH key, then push the secrets
mlopsdeploy audit [--host NAME]   try the default key, passwords, root; ssh-audit; token; ports
mlopsdeploy testbed ...           local test VMs (see docs/testbed.md)
mlopsdeploy watch ...             the watchdog (see docs/watchdog.md)
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path

from mlopsdeploy.config import ConfigError, HostConfig, load_hosts, state_dir
from mlopsdeploy.deployment.api import deploy, rollback
from mlopsdeploy.deployment.control.appspec_load import load_app_spec
from mlopsdeploy.deployment.results import DeployOptions, DeployResult, HostResult
from mlopsdeploy.deployment.rollout import RolloutHooks, fail_limit, load_settings, parse_batches
from mlopsdeploy.errors import DeployError


def _print_host(result: HostResult) -> None:
    """One line per host, printed after the whole deploy, whatever pyinfra logged before it."""
    seconds = result.timings.get("total", sum(result.timings.values()))
    if result.outcome == "not started":
        print(f"{result.host}: NOT STARTED  {result.url}  keeps the release it serves")
        return
    if result.rolled_back:
        print(f"{result.host}: ROLLED BACK  {result.url}  serves its previous release again")
        return
    if not result.ok:
        cause, *_ = str(result.error).removeprefix(f"{result.host}: ").splitlines()
        print(f"{result.host}: FAILED  {result.url}  after {seconds:.1f}s: {cause}")
        return
    changes = f"{len(result.changed)} steps changed" if result.changed else "no changes"
    release = result.release or "-"
    print(f"{result.host}: OK  {result.url}  release {release}  {changes}  in {seconds:.1f}s")


def _report(result: DeployResult, as_json: bool) -> int:
    if as_json:
        print(json.dumps(_result_dict(result), indent=2))
        return 0 if result.ok else 1
    for host in result.hosts:
        details = str(host.error).splitlines()[1:] if host.error else []
        if details:  # the journal of a failed app: why, without logging in
            print(f"{host.host}:", *details, sep="\n", file=sys.stderr)
    for host in result.hosts:
        _print_host(host)
    if result.stopped:  # a rolling release left hosts behind: say which to deploy again
        print(f"rollout stopped: {result.stopped}")
        print(f"to retry: {' '.join(result.retry)}")
    return 0 if result.ok else 1


def _result_dict(result: DeployResult) -> dict:
    return {
        "ok": result.ok,
        "stopped": result.stopped,
        "retry": result.retry,
        "hosts": [_as_dict(h) for h in result.hosts],
    }


def _as_dict(result: HostResult) -> dict:
    return {
        "host": result.host,
        "ok": result.ok,
        "outcome": result.outcome,
        "batch": result.batch,
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
    if getattr(args, "app", None):
        hosts = [replace(h, app_dir=args.app) for h in hosts]
    return hosts, False


def _options(args: argparse.Namespace, fresh_vm: bool = False) -> DeployOptions:
    options = DeployOptions(
        accept_new_host_key=args.accept_new_host_key or fresh_vm,
        gate_timeout=args.gate_timeout,
        output=not args.quiet,
    )
    if getattr(args, "app", None):
        options = replace(options, app_dir=args.app)
    return replace(options, model_dir=args.model) if args.model else options


def _rollout_options(args: argparse.Namespace, options: DeployOptions) -> DeployOptions:
    """--batches/--max-fail, else the [rollout] table of hosts.toml (docs/fleet.md)."""
    settings = load_settings()
    batches = parse_batches(args.batches) if args.batches else settings.batches
    max_fail: int | str = settings.max_fail
    if args.max_fail is not None:
        max_fail = int(args.max_fail) if args.max_fail.isdigit() else args.max_fail
    fail_limit(max_fail, 100)  # a malformed value is refused before any host is touched
    return replace(
        options, batches=batches, max_fail=max_fail, rollback_failed=args.rollback_failed
    )


def cmd_deploy(args: argparse.Namespace) -> int:
    if args.app:  # a bad spec is refused before any host (or the demo VM) is touched
        load_app_spec(args.app)
    hosts, fresh = _targets(args)
    options = _rollout_options(args, _options(args, fresh))
    apps, hooks = _fleet(hosts)
    return _report(deploy(apps, options, hooks), args.json)


def _fleet(hosts: list[HostConfig]) -> tuple[list[HostConfig], RolloutHooks | None]:
    """The app hosts among ``hosts``, and the load balancer's hooks when the inventory has one.

    The LB's config lists every configured app host, not only the selected ones.
    """
    from mlopsdeploy.deployment import lb

    apps, _ = lb.split_inventory(hosts)
    return apps, lb.hooks_for(load_hosts() or hosts)


def cmd_status(args: argparse.Namespace) -> int:
    """One row per app host: what it serves and whether it answers; non-zero if any is unwell."""
    from mlopsdeploy.deployment import lb, status

    hosts, _ = _targets(args)
    inventory = load_hosts() or hosts
    apps, _ = lb.split_inventory(hosts)
    _, lbs = lb.split_inventory(inventory)
    rows = status.collect(apps, (lambda _: lb.lb_view(inventory)) if lbs else None)
    print(status.as_json(rows) if args.json else status.as_table(rows))
    return 0 if status.healthy(rows) else 1


def cmd_rollback(args: argparse.Namespace) -> int:
    hosts, fresh = _targets(args)
    return _report(rollback(hosts, _options(args, fresh)), args.json)


def cmd_demo(args: argparse.Namespace) -> int:
    from mlopsdeploy.testbed.demo import api_answer, ensure_standin, local_answer, standin_source
    from mlopsdeploy.testbed.target import demo_vm, testbed_host

    vm, fresh = demo_vm()
    cfg = testbed_host(vm, api_model=args.api_model)
    source = f"{args.api_model}, given by --api-model"
    if not args.api_model:
        standin = ensure_standin(vm, state_dir())
        cfg = replace(cfg, api_model=standin.url, hf_token_file=standin.token_file)
        source = standin_source(standin)
    result = deploy([cfg], _options(args, fresh))
    code = _report(result, as_json=False)
    for host in result.hosts:
        if host.ok:
            print(f"\nThe app is up: {host.url}  (UI at /, API docs at /docs)")
            print(local_answer(host.url, host.model_version))
            print(api_answer(host.url, source))
    return code


def cmd_audit(args: argparse.Namespace) -> int:
    """Try on each host what other teams would; a table (or JSON), non-zero on any failure."""
    from mlopsdeploy.deployment.control.audit import as_json, as_table, audit_host

    hosts, _ = _targets(args)
    audits = [audit_host(cfg) for cfg in hosts]
    print(json.dumps(as_json(audits), indent=2) if args.json else as_table(audits))
    return 0 if all(a.ok for a in audits) else 1


def cmd_trust(args: argparse.Namespace) -> int:
    """Show the host key a host presents, record it once a person confirms, push the secrets."""
    from mlopsdeploy.deployment.control.host_keys import known_hosts_entry, server_host_key
    from mlopsdeploy.deployment.control.host_trust import (
        awaiting_trust,
        confirm_host_key,
        recorded_fingerprint,
    )

    args.host = [args.name]
    (cfg,), _ = _targets(args)
    key = server_host_key(cfg)
    shown = key.fingerprint
    pending = awaiting_trust(cfg)
    print(f"{cfg.name} ({known_hosts_entry(cfg)}) presents {key.get_name()} {shown}")
    if pending:
        print(f"  accepted by the watchdog with nobody confirming it: {pending}")
    else:
        print(f"  recorded: {recorded_fingerprint(cfg) or 'nothing yet'}")
    print("  compare on the VM's console: ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub")
    if args.fingerprint is None:
        if not sys.stdin.isatty():
            print("mlopsdeploy: not confirmed: pass --fingerprint SHA256:...", file=sys.stderr)
            return 1
        args.fingerprint = shown if input("Is this your VM's key? [yes/no] ") == "yes" else ""
    if args.fingerprint != shown:
        print(f"mlopsdeploy: {cfg.name}: not trusted; nothing was recorded", file=sys.stderr)
        return 1
    confirm_host_key(cfg, shown)
    print(f"{cfg.name}: {shown} confirmed and recorded; deploying with the secrets")
    return _report(deploy([cfg], _options(args)), args.json)


def _delegate(module: str, argv: list[str]) -> int:
    import importlib

    return int(importlib.import_module(module).main(argv))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mlopsdeploy", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name, func, text in (
        ("deploy", cmd_deploy, "deploy app + model to the configured hosts"),
        ("rollback", cmd_rollback, "serve each host's previous release again"),
        ("demo", cmd_demo, "deploy to the local testbed VM, print one answer of each product"),
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
        p.add_argument(
            "--app",
            type=Path,
            help="your app's dir (with mlopsdeploy.toml, docs/deploy.md); default: the bundled app",
        )
        p.add_argument("--gate-timeout", type=float, default=120.0, help="seconds (default 120)")
        p.add_argument("--quiet", action="store_true", help="hide pyinfra's per-operation log")
        if name == "deploy":
            p.add_argument(
                "--batches",
                help="rolling release: hosts per batch, e.g. 1,25%%,100%% (default: [rollout] "
                "batches of hosts.toml, else all hosts at once)",
            )
            p.add_argument(
                "--max-fail",
                help="failed hosts (N or P%%) tolerated before the rollout stops (default 0)",
            )
            p.add_argument(
                "--rollback-failed",
                action="store_true",
                help="put the batch that stopped the rollout back on its previous release",
            )
    status = sub.add_parser("status", help="release, model, workers, /readyz, LB view per host")
    status.set_defaults(func=cmd_status, api_model=None)
    status.add_argument("--host", action="append", help="only this configured host (repeatable)")
    status.add_argument("--json", action="store_true", help="print the rows as JSON")
    audit = sub.add_parser("audit", help="check each host resists the default key, passwords, root")
    audit.set_defaults(func=cmd_audit, api_model=None)
    audit.add_argument("--host", action="append", help="only this configured host (repeatable)")
    audit.add_argument("--json", action="store_true", help="print the checks as JSON")
    trust = sub.add_parser("trust", help="confirm a host's new SSH key, then push the secrets")
    trust.set_defaults(func=cmd_trust, api_model=None, accept_new_host_key=False)
    trust.add_argument("name", help="the configured host")
    trust.add_argument("--fingerprint", help="the SHA256:... you checked on the VM (no prompt)")
    trust.add_argument("--json", action="store_true", help="print the deploy result as JSON")
    trust.add_argument("--model", type=Path, help="model dir (default build/model)")
    trust.add_argument("--gate-timeout", type=float, default=120.0, help="seconds (default 120)")
    trust.add_argument("--quiet", action="store_true", help="hide pyinfra's per-operation log")
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
    except (ConfigError, ValueError, DeployError) as e:
        print(f"mlopsdeploy: {e}", file=sys.stderr)
        return 2
