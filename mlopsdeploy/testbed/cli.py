"""`python -m mlopsdeploy.testbed COMMAND`: the testbed from a shell.

Machines made here are user-managed (no owning process): they stay until `destroy`, and test
runs' stale-machine cleanup never touches them.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable

from mlopsdeploy.testbed.image import DEFAULT_RELEASE, RELEASES, Image
from mlopsdeploy.testbed.machine import TestVM
from mlopsdeploy.testbed.registered import cleanup_stale, machines
from mlopsdeploy.testbed.requirements import missing_requirements

#: command -> (help, what it does to an existing machine)
FAULTS: dict[str, tuple[str, Callable[[TestVM], object]]] = {
    "down": ("orderly shutdown; disk and address are kept", TestVM.down),
    "wipe": ("re-image: pristine disk, new host keys, running again", TestVM.wipe),
    "wipe-home": ("restore the user's home to the pristine one", TestVM.wipe_home),
    "reboot": ("reboot the guest; returns when it is back", TestVM.reboot),
    "power-on": ("boot a powered-off machine", TestVM.power_on),
    "cut-network": ("unplug the machine's link", TestVM.cut_network),
    "restore-network": ("plug the link back in", TestVM.restore_network),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m mlopsdeploy.testbed",
        description="Disposable local course VMs (systemd-nspawn). See docs/testbed.md.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    build = sub.add_parser("build", help="build the VM image unless cached")
    build.add_argument("--rebuild", action="store_true", help="build even if cached")
    _add_image_option(build)
    up = sub.add_parser("up", help="create if needed and boot a machine; wait until ready")
    up.add_argument("name")
    _add_image_option(up)
    up.add_argument("--timeout", type=float, default=60)
    sub.add_parser("list", help="registered machines")
    ssh = sub.add_parser("ssh", help="ssh into a machine as the user with the default key")
    ssh.add_argument("name")
    ssh.add_argument("remote_command", nargs=argparse.REMAINDER, help="command to run instead")
    destroy = sub.add_parser("destroy", help="remove machines and everything they use")
    destroy.add_argument("names", nargs="*")
    destroy.add_argument(
        "--stale", action="store_true", help="also machines whose owning process is gone"
    )
    off = sub.add_parser("power-off", help="power off (orderly unless --force)")
    off.add_argument("name")
    off.add_argument("--force", action="store_true", help="pull the plug: kill the guest's init")
    for command, (text, _) in FAULTS.items():
        sub.add_parser(command, help=text).add_argument("name")
    return parser


def _add_image_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--image",
        choices=sorted(RELEASES),
        default=DEFAULT_RELEASE,
        help=f"Debian release of the image (default {DEFAULT_RELEASE}; an existing machine "
        "keeps the image it was created from)",
    )


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command != "list" and (missing := missing_requirements()):
        print("testbed needs: " + "; ".join(missing), file=sys.stderr)
        return 1
    if args.command == "build":
        image = Image.for_release(args.image).ensure(rebuild=args.rebuild)
        info = image.info()
        print(f"image {image.digest} at {image.rootfs}")
        print(f"built in {info['build_seconds']} s, {int(str(info['size_bytes'])) / 1e6:.0f} MB")
    elif args.command == "list":
        _print_machines()
    elif args.command == "destroy":
        for name in args.names:
            TestVM(name).destroy()
        if args.stale:
            for name in cleanup_stale():
                print(f"destroyed stale machine {name}")
    else:
        return _on_machine(args)
    return 0


def _on_machine(args: argparse.Namespace) -> int:
    vm = TestVM(args.name, getattr(args, "image", None), persistent=True)
    if args.command == "up":
        vm.up(timeout=args.timeout)
        print(f"{vm.name} is up at {vm.address} (host side {vm.host_address})")
        print(f"  ssh: python -m mlopsdeploy.testbed ssh {vm.name}")
        return 0
    if not vm.exists():
        print(f"no machine named {vm.name!r}; create it with `up {vm.name}`", file=sys.stderr)
        return 1
    if args.command == "ssh":
        argv = vm.ssh_argv(" ".join(args.remote_command) or None, tty=sys.stdin.isatty())
        os.execvp(argv[0], argv)
    if args.command == "power-off":
        vm.power_off(force=args.force)
    else:
        FAULTS[args.command][1](vm)
    return 0


def _print_machines() -> None:
    rows = [("NAME", "ADDRESS", "STATE", "OWNER", "IMAGE")]
    for vm in machines():
        record = vm.record
        state = "running" if vm.is_running() else "off"
        if vm.is_running() and vm.network_is_cut():
            state += ", network cut"
        owner = f"pid {record.owner.pid}" if record.owner else "user"
        if record.stale():
            owner += " (gone: stale)"
        rows.append((vm.name, vm.address, state, owner, record.image))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        cells = (cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        print("  ".join(cells).rstrip())
