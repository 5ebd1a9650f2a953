"""`mlopsdeploy watch`: run the watchdog, summarise its journal, or set it up to run for good.

Usable on its own as ``python -m mlopsdeploy.watchdog``; the main CLI mounts it as its ``watch``
subcommand through `add_arguments` and `run`.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from functools import partial
from pathlib import Path
from types import FrameType

from mlopsdeploy.config import ConfigError, state_dir
from mlopsdeploy.deployment.control.appspec import AppSpecError
from mlopsdeploy.deployment.results import DeployOptions
from mlopsdeploy.watchdog import daemon
from mlopsdeploy.watchdog.alerts import Alerter, NoAlerts, Webhook
from mlopsdeploy.watchdog.guards import FileLock, host_lock
from mlopsdeploy.watchdog.hosts import watched_hosts
from mlopsdeploy.watchdog.journal import Journal, summarise
from mlopsdeploy.watchdog.ladder import HostKeyPolicy
from mlopsdeploy.watchdog.probe import app_spec_for, canaries_for, readiness_probe
from mlopsdeploy.watchdog.repairs import HostRepairs
from mlopsdeploy.watchdog.ssh_check import diagnose
from mlopsdeploy.watchdog.watcher import HostWatcher, WatchSettings, run_watchers

log = logging.getLogger("mlopsdeploy.watchdog")

WEBHOOK_ENV = "MLOPSDEPLOY_WEBHOOK_URL"
_DEFAULTS = WatchSettings()
# (flag, attribute, type, default, help) of every setting that a generated unit passes on.
_SETTINGS: tuple[tuple[str, str, type, object, str], ...] = (
    ("--interval", "interval_s", float, _DEFAULTS.interval_s, "seconds between probes"),
    ("--probe-timeout", "probe_timeout_s", float, 3.0, "seconds a probe request may take"),
    ("--confirm", "confirm_s", float, _DEFAULTS.confirm_s, "seconds a running app may fail"),
    ("--heal-grace", "heal_grace_s", float, _DEFAULTS.heal_grace_s, "seconds systemd gets to heal"),
    ("--cooldown", "cooldown_s", float, _DEFAULTS.cooldown_s, "pause after a repair (doubles)"),
    ("--backoff-cap", "backoff_cap_s", float, _DEFAULTS.backoff_cap_s, "longest backoff"),
    ("--max-actions-per-hour", "max_actions_per_hour", int, _DEFAULTS.max_actions_per_hour, ""),
)


def default_state_dir() -> Path:
    return state_dir() / "watchdog"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--status", action="store_true", help="summarise the incident journal")
    mode.add_argument("--print-systemd-unit", action="store_true", help="print a user unit")
    mode.add_argument(
        "--install-systemd-unit", action="store_true", help="write the user unit to ~/.config"
    )
    mode.add_argument("--print-cron", action="store_true", help="print the equivalent cron line")
    parser.add_argument("--host", action="append", default=[], help="watch only this host")
    for flag, dest, kind, default, text in _SETTINGS:
        parser.add_argument(flag, dest=dest, type=kind, default=default, help=text or None)
    parser.add_argument(
        "--host-key-policy",
        choices=[p.value for p in HostKeyPolicy],
        default=_DEFAULTS.host_key_policy.value,
        help="accept a changed host key only from a freshly issued VM, or never",
    )
    parser.add_argument("--state-dir", type=Path, default=None, help="journal, locks, logs")
    parser.add_argument("--last", type=int, default=10, help="incidents listed by --status")
    parser.add_argument("-v", "--verbose", action="store_true")


def run(args: argparse.Namespace) -> int:
    state = args.state_dir or default_state_dir()
    if args.status:
        print(summarise(Journal(state / "incidents.jsonl").incidents(), args.last))
        return 0
    options = _passed_options(args)
    if args.print_systemd_unit:
        print(daemon.render_unit(options, Path.cwd()))
        return 0
    if args.install_systemd_unit:
        path = daemon.install_unit(daemon.render_unit(options, Path.cwd()))
        print(f"wrote {path}; now run:\n{daemon.enable_hint()}")
        return 0
    if args.print_cron:
        print(daemon.cron_line(options, Path.cwd(), state / "watchdog.log"))
        return 0
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(message)s",
    )
    # paramiko logs a traceback for every host that does not answer; the diagnosis says it.
    logging.getLogger("paramiko").setLevel(logging.CRITICAL)
    for chatty in ("httpx", "httpcore"):  # a line (or ten) per probe request
        logging.getLogger(chatty).setLevel(logging.WARNING)
    try:
        return watch(args, state)
    except (ConfigError, AppSpecError) as exc:
        print(f"mlopsdeploy watch: {exc}", file=sys.stderr)
        return 2


def watch(args: argparse.Namespace, state: Path) -> int:
    hosts = watched_hosts(args.host)
    with FileLock(state / "watchdog.lock").hold() as only_one:
        if not only_one:
            log.info("another watchdog already runs with state dir %s; exiting", state)
            return 0
        settings = WatchSettings(
            interval_s=args.interval_s,
            confirm_s=args.confirm_s,
            heal_grace_s=args.heal_grace_s,
            cooldown_s=args.cooldown_s,
            backoff_cap_s=args.backoff_cap_s,
            max_actions_per_hour=args.max_actions_per_hour,
            host_key_policy=HostKeyPolicy(args.host_key_policy),
        )
        journal = Journal(state / "incidents.jsonl")
        alerter = _alerter()
        canaries = canaries_for(DeployOptions().model_dir)
        stop = threading.Event()
        watchers = [
            HostWatcher(
                cfg.name,
                probe=readiness_probe(cfg, canaries, args.probe_timeout_s, spec=app_spec_for(cfg)),
                diagnose=partial(diagnose, cfg),
                repair=HostRepairs(cfg, state / "deploy-logs", stop),
                journal=journal,
                alerter=alerter,
                lock=host_lock(state / "locks", cfg.name),
                settings=settings,
            )
            for cfg in hosts
        ]

        def request_stop(signum: int, frame: FrameType | None) -> None:
            log.info("stopping (signal %d)", signum)
            stop.set()

        signal.signal(signal.SIGTERM, request_stop)
        signal.signal(signal.SIGINT, request_stop)
        log.info(
            "watching %s every %.1fs; journal %s; alerts %s",
            ", ".join(f"{c.name} ({c.url})" for c in hosts),
            settings.interval_s,
            journal.path,
            "to a webhook" if isinstance(alerter, Webhook) else "off",
        )
        run_watchers(watchers, settings.interval_s, stop)
    return 0


def _alerter() -> Alerter:
    url = os.environ.get(WEBHOOK_ENV, "").strip()
    return Webhook(url) if url else NoAlerts()


def _passed_options(args: argparse.Namespace) -> list[str]:
    """The settings given on this command line, for the unit or cron line to run with."""
    options: list[str] = []
    for name in args.host:
        options += ["--host", name]
    for flag, dest, _, default, _ in _SETTINGS:
        if getattr(args, dest) != default:
            options += [flag, str(getattr(args, dest))]
    if args.host_key_policy != _DEFAULTS.host_key_policy.value:
        options += ["--host-key-policy", args.host_key_policy]
    if args.state_dir is not None:
        options += ["--state-dir", str(args.state_dir.resolve())]
    return options


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="mlopsdeploy watch",
        description="Probe every configured host and recover it when it fails.",
    )
    add_arguments(parser)
    return run(parser.parse_args(argv))
