"""HAProxy on the load balancer host: Debian's package, the rendered config, the service.

Offline hosts get the ``.deb`` files the control machine fetched (control/debs.py) pushed and
installed with ``dpkg``; online hosts install from their own mirror. A new config is
checked by ``haproxy -c`` on the host before it replaces the one in use, and a changed config is
*reloaded*: HAProxy's master hands the listening socket to new workers, so no client is refused.
"""

from __future__ import annotations

import io
import shlex
from pathlib import Path

from pyinfra import host
from pyinfra.api import FileUploadCommand, operation
from pyinfra.api.operation import OperationMeta
from pyinfra.facts.deb import DebPackages

from mlopsdeploy.config import HostConfig
from mlopsdeploy.deployment.facts.haproxy import HAPROXY_CONFIG, FileText
from mlopsdeploy.deployment.facts.service import ServiceStatus
from mlopsdeploy.deployment.host_commands import systemctl
from mlopsdeploy.errors import DeployError

#: haproxy itself, and socat for its runtime API on the admin socket (what HAProxy's docs use).
PACKAGES = ("haproxy", "socat")
UNIT = "haproxy.service"
APT = "sudo -n env DEBIAN_FRONTEND=noninteractive apt-get -q -y --no-install-recommends"
DPKG = "sudo -n env DEBIAN_FRONTEND=noninteractive dpkg --force-confdef --force-confold"


def upload_dir(cfg: HostConfig) -> str:
    """Where files for the load balancer land before they are installed as root."""
    return f"{cfg.base_dir}/lb"


@operation()
def packages_installed(
    cfg: HostConfig, debs: tuple[Path, ...] = (), names: tuple[str, ...] = PACKAGES
):
    """Install HAProxy (and socat) unless the host has them.

    + cfg: the host's configuration (offline or online)
    + debs: the ``.deb`` files the host lacks, fetched on the control machine (offline)
    + names: the packages that must be installed
    """
    installed = host.get_fact(DebPackages)
    if all(name in installed for name in names):
        return
    if cfg.install == "online":
        yield "sudo -n env DEBIAN_FRONTEND=noninteractive apt-get -q update"
        yield f"{APT} install " + " ".join(shlex.quote(name) for name in names)
        return
    if not debs:
        raise DeployError(cfg.name, f"{', '.join(names)} missing and no .deb files to install")
    target = f"{upload_dir(cfg)}/debs"
    yield f"rm -rf {shlex.quote(target)} && mkdir -p {shlex.quote(target)}"
    for deb in debs:
        yield FileUploadCommand(str(deb), f"{target}/{deb.name}")
    # dpkg, not apt: the files are exactly what the host lacks (apt resolved them against its
    # dpkg status), and `apt-get install <files>` failed on the testbed image ("Pathname to
    # install is not absolute" for a dependency among the files).
    files = " ".join(shlex.quote(f"{target}/{deb.name}") for deb in debs)
    yield f"{DPKG} -i {files} && rm -rf {shlex.quote(target)}"


@operation()
def config_file(cfg: HostConfig, text: str):
    """Put ``text`` in /etc/haproxy/haproxy.cfg, after ``haproxy -c`` accepted it on the host.

    + cfg: the host's configuration
    + text: the whole config, rendered from the inventory
    """
    if host.get_fact(FileText, path=HAPROXY_CONFIG) == text:
        return
    staged = f"{upload_dir(cfg)}/haproxy.cfg"
    yield f"mkdir -p {shlex.quote(upload_dir(cfg))}"
    yield FileUploadCommand(io.StringIO(text), staged)
    new = shlex.quote(staged)
    yield f"sudo -n haproxy -c -q -f {new} && sudo -n install -m 0644 {new} {HAPROXY_CONFIG}"


@operation()
def service_running(after: tuple[OperationMeta, ...] = ()):
    """HAProxy enabled and active; reloaded (not restarted) when its config or package changed.

    + after: operations (packages, config) whose changes the running HAProxy must pick up
    """
    status = host.get_fact(ServiceStatus, unit=UNIT, scope="system")
    ctl = systemctl("system")
    if not status.enabled:
        yield f"{ctl} enable {UNIT}"
    if not status.active:
        yield f"{ctl} start {UNIT}"
    elif any(op.is_complete() and op.did_change() for op in after):
        yield f"{ctl} reload {UNIT}"
