"""The course's port layout: a VM reached only through forwarded ports, as behind the course's NAT.

Course VMs sit behind a NAT with per-team ports (SSH on 22010, the app on 8010). A machine
created with PortForwards gets the same: DNAT rules on the host map the host end of its link
(10.213.N.1) ports to the guest's sshd and app, and a filter rejects every connection from the
host to the guest's own SSH or app port that did not come through the NAT. So anything that
still talks to port 22 or to the app's internal port fails loudly instead of working by luck.

One nftables table per machine (``mlopsdeploy-nat-N``), replaced as a whole, deleted on destroy.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path

from mlopsdeploy.testbed.network import Link

GUEST_SSH_PORT = 22


@dataclass(frozen=True)
class PortForwards:
    """Host-side ports forwarded to the guest, like the course's (22010 -> 22, 8010 -> 8000).

    + ssh: public port of the guest's sshd
    + app: public port of the deployed app
    + app_target: the port the app listens on inside the guest
    """

    ssh: int = 22010
    app: int = 8010
    app_target: int = 8000

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(asdict(self)))

    @classmethod
    def load(cls, path: Path) -> PortForwards | None:
        """The forwards recorded for a machine (None: it is reached directly)."""
        try:
            return cls(**json.loads(path.read_text()))
        except FileNotFoundError:
            return None


def table_name(index: int) -> str:
    return f"mlopsdeploy-nat-{index}"


def ruleset(link: Link, forwards: PortForwards) -> str:
    """The machine's nftables table: DNAT of locally made connections, and the direct-path guard."""
    public, guest = link.host_address, link.guest_address
    inner = f"{{ {GUEST_SSH_PORT}, {forwards.app_target} }}"
    return f"""
table ip {table_name(link.index)} {{
    chain output_nat {{
        type nat hook output priority -100;
        ip daddr {public} tcp dport {forwards.ssh} dnat to {guest}:{GUEST_SSH_PORT}
        ip daddr {public} tcp dport {forwards.app} dnat to {guest}:{forwards.app_target}
    }}
    chain output_guard {{
        type filter hook output priority 0;
        ip daddr {guest} tcp dport {inner} ct status dnat accept
        ip daddr {guest} tcp dport {inner} reject with tcp reset
    }}
}}
"""


def apply(link: Link, forwards: PortForwards) -> None:
    """Install (or replace) the machine's forwards; idempotent."""
    name = table_name(link.index)
    # Declaring the table first makes the delete safe when it does not exist yet.
    _nft(f"table ip {name}\ndelete table ip {name}\n{ruleset(link, forwards)}")


def remove(index: int) -> None:
    """Delete machine ``index``'s forwards if there are any."""
    name = table_name(index)
    _nft(f"table ip {name}\ndelete table ip {name}\n")


def _nft(script: str) -> None:
    result = subprocess.run(
        ["nft", "-f", "-"], input=script, capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(f"nft failed: {result.stderr.strip()}")
