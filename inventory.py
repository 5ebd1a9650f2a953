"""pyinfra inventory: ``pyinfra inventory.py deploys/main.py`` deploys like ``mlopsdeploy deploy``.

Hosts come from ``~/.config/mlopsdeploy/hosts.toml`` or ``MLOPSDEPLOY_*`` variables (see
docs/deploy.md); with none, the local testbed VM ``demo`` (booted if needed). SSH access is
settled before pyinfra connects (host key checked, own key bootstrapped with the default key),
so pyinfra always logs in with the user's own key. ``MLOPSDEPLOY_ACCEPT_NEW_HOST_KEY=1`` trusts
a re-imaged VM's new host key.
"""

import os
import sys

from mlopsdeploy.config import load_hosts
from mlopsdeploy.deployment.api import ensure_access
from mlopsdeploy.deployment.deploy_file import rollout_note
from mlopsdeploy.deployment.lb import split_inventory
from mlopsdeploy.deployment.pyinfra_run import ssh_data
from mlopsdeploy.deployment.rollout import load_settings

_configured = load_hosts()
_accept = os.environ.get("MLOPSDEPLOY_ACCEPT_NEW_HOST_KEY") == "1"
if not _configured:
    from mlopsdeploy.testbed.target import demo_vm, testbed_host

    _vm, _created = demo_vm()
    _configured, _accept = [testbed_host(_vm)], _accept or _created

for _cfg in _configured:
    ensure_access(_cfg, _accept)

# pyinfra groups: the load balancer(s) in ``lb``, every other host in ``app``.
_app, _lb = split_inventory(_configured)
if _note := rollout_note(_app, load_settings().batches):
    print(_note, file=sys.stderr)
app = [(cfg.name, {**ssh_data(cfg, cfg.own_key), "mlopsdeploy": cfg}) for cfg in _app]
lb = [(cfg.name, {**ssh_data(cfg, cfg.own_key), "mlopsdeploy": cfg}) for cfg in _lb]
