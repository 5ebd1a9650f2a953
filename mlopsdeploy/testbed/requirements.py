"""What this host lacks to run test VMs, in words a user can act on.

Tests that need a VM skip with exactly this text instead of failing obscurely half way through
a boot, so a developer without root still gets a green unit suite and knows what to install.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

#: executable -> how to get it on Debian
TOOLS = {
    "systemd-nspawn": "apt-get install systemd-container",
    "mmdebstrap": "apt-get install mmdebstrap",
    "ip": "apt-get install iproute2",
    "ssh": "apt-get install openssh-client",
    "ssh-keygen": "apt-get install openssh-client",
    "ssh-keyscan": "apt-get install openssh-client",
    "nsenter": "apt-get install util-linux",
    "mount": "apt-get install mount",
    "nft": "apt-get install nftables",
}


def missing_requirements() -> list[str]:
    """Each missing requirement with how to fix it; empty when test VMs can run here."""
    missing = []
    if os.geteuid() != 0:
        missing.append(f"root (running as uid {os.geteuid()})")
    for tool, fix in TOOLS.items():
        if shutil.which(tool) is None and not Path("/usr/sbin", tool).exists():
            missing.append(f"{tool} ({fix})")
    if "overlay" not in Path("/proc/filesystems").read_text():
        missing.append("overlayfs in the kernel (modprobe overlay)")
    return missing
