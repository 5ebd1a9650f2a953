"""Machines are isolated: each has a link of its own (reaching the host's end, nothing else)
and cgroups of its own."""

from __future__ import annotations

import socket
import subprocess
import threading
from collections.abc import Callable
from pathlib import Path

from mlopsdeploy.testbed import TestVM
from mlopsdeploy.testbed.ssh import banner

#: Connect from inside the guest; prints "connected" or the error, never hangs for long.
CONNECT = (
    "python3 -c 'import socket,sys; "
    "s=socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=3); "
    'print("connected", s.recv(64).decode())\' {host} {port} 2>&1 || true'
)


def test_guest_reaches_the_hosts_end_of_its_link(test_vm: TestVM) -> None:
    with socket.create_server((test_vm.host_address, 0)) as server:
        port = server.getsockname()[1]

        def greet() -> None:
            conn, _ = server.accept()
            with conn:
                conn.sendall(b"hello-from-host")

        thread = threading.Thread(target=greet, daemon=True)
        thread.start()
        out = test_vm.run(CONNECT.format(host=test_vm.host_address, port=port)).stdout
        thread.join(timeout=5)
    assert out.strip() == "connected hello-from-host"


def test_two_machines_cannot_reach_each_other(test_vm_factory: Callable[[], TestVM]) -> None:
    a, b = test_vm_factory(), test_vm_factory()
    assert a.address != b.address
    assert banner(b.address, 22, timeout=3), "the host itself reaches b"
    assert "default" not in a.run("ip route").stdout
    assert "unreachable" in a.run(CONNECT.format(host=b.address, port=22)).stdout
    # Even root in the guest routing through the host gets nowhere: the host does not forward.
    a.run(f"sudo -n ip route add {b.address}/32 via {a.host_address}")
    assert "connected" not in a.run(CONNECT.format(host=b.address, port=22)).stdout


def test_cut_network_isolates_a_running_machine_until_restored(test_vm: TestVM) -> None:
    test_vm.cut_network()
    assert test_vm.network_is_cut()
    assert test_vm.run("true", check=False, timeout=30).returncode == 255
    # Traffic to the guest fails on this machine; it must never follow the default route out.
    route = subprocess.run(
        ["ip", "route", "get", test_vm.address], capture_output=True, text=True, check=False
    )
    assert route.returncode != 0 or route.stdout.startswith("unreachable"), route.stdout
    assert test_vm.is_running()
    test_vm.restore_network()
    assert test_vm.run("echo back").stdout.strip() == "back"


def test_machines_do_not_share_cgroups(test_vm_factory: Callable[[], TestVM]) -> None:
    """Each guest's systemd manages a cgroup tree of its own; shared, units of the same name
    in different machines (every deployed app.service) would share one cgroup."""
    trees = set()
    for vm in (test_vm_factory(), test_vm_factory()):
        init_cgroups = Path(f"/proc/{vm._init().pid}/cgroup").read_text()
        unified = next(line for line in init_cgroups.splitlines() if line.startswith("0::"))
        assert f"/mlopsdeploy-testbed/{vm.name}/" in unified
        trees.add(unified)
    assert len(trees) == 2
