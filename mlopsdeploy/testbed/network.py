"""Each machine's private link: a network namespace and a veth pair to the host.

Machine N gets the host side `mdtbN` with 10.213.N.1/30 and, inside its namespace, `eth0` with
10.213.N.2/30 and no default route. The guest can therefore reach only the host's end of its
own link; forwarding is switched off on the host side so even a guest that adds routes of its
own cannot get through the host to another machine.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

NETNS_DIR = Path("/run/netns")
GUEST_IFNAME = "eth0"
#: Metric of the fallback route: worse than the connected route (0), so used only when it is gone.
FALLBACK_METRIC = "1000"


@dataclass(frozen=True)
class Link:
    """The network plumbing of machine `index` whose namespace is called `netns`."""

    netns: str
    index: int

    @property
    def host_ifname(self) -> str:
        return f"mdtb{self.index}"

    @property
    def host_address(self) -> str:
        return f"10.213.{self.index}.1"

    @property
    def guest_address(self) -> str:
        return f"10.213.{self.index}.2"

    @property
    def subnet(self) -> str:
        return f"10.213.{self.index}.0/30"

    @property
    def netns_path(self) -> Path:
        return NETNS_DIR / self.netns

    def create(self) -> None:
        """Namespace, veth pair, addresses, links up. Safe to call again on a partial setup."""
        if not self.netns_path.exists():
            _ip("netns", "add", self.netns)
        if not host_link_exists(self.index):
            peer = ("peer", "name", GUEST_IFNAME, "netns", self.netns)
            _ip("link", "add", self.host_ifname, "type", "veth", *peer)
        Path(f"/proc/sys/net/ipv4/conf/{self.host_ifname}/forwarding").write_text("0\n")
        _ip("addr", "replace", f"{self.host_address}/30", "dev", self.host_ifname)
        _ip("link", "set", self.host_ifname, "up")
        _ip("-n", self.netns, "addr", "replace", f"{self.guest_address}/30", "dev", GUEST_IFNAME)
        _ip("-n", self.netns, "link", "set", GUEST_IFNAME, "up")
        _ip("-n", self.netns, "link", "set", "lo", "up")
        # While the link is down (cut_network) its connected route is gone, and traffic to the
        # guest's address would follow the host's default route out of this machine. This
        # fallback route (a worse metric than the connected one) fails it locally instead.
        _ip("route", "replace", "unreachable", self.subnet, "metric", FALLBACK_METRIC)

    def destroy(self) -> None:
        """Remove the veth pair, the fallback route and the namespace; missing parts are skipped."""
        if host_link_exists(self.index):
            _ip("link", "del", self.host_ifname)
        subprocess.run(
            ["ip", "route", "del", "unreachable", self.subnet, "metric", FALLBACK_METRIC],
            capture_output=True,
            check=False,
        )
        remove_namespace(self.netns)

    def set_up(self, up: bool) -> None:
        """Plug or unplug the cable: the host side goes down, the guest sees no carrier."""
        _ip("link", "set", self.host_ifname, "up" if up else "down")

    def is_up(self) -> bool:
        flags = Path(f"/sys/class/net/{self.host_ifname}/flags").read_text()
        return bool(int(flags, 16) & 0x1)


def remove_namespace(netns: str) -> None:
    """Delete a namespace (and with it the guest end of its veth pair) if it exists."""
    if (NETNS_DIR / netns).exists():
        _ip("netns", "del", netns)


def host_link_exists(index: int) -> bool:
    return Path(f"/sys/class/net/mdtb{index}").exists()


def indexes_in_use() -> set[int]:
    """Indexes whose host link exists, registered or not (a leftover must not be reused)."""
    return {
        int(entry.name[4:])
        for entry in Path("/sys/class/net").iterdir()
        if entry.name.startswith("mdtb") and entry.name[4:].isdigit()
    }


def _ip(*args: str) -> None:
    result = subprocess.run(["ip", *args], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)} failed: {result.stderr.strip()}")
