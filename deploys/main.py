"""pyinfra deploy file: ``pyinfra inventory.py deploys/main.py`` (hosts and access: inventory.py).

The same ``@deploy`` the library runs; the release (app wheel + model) is built once per run on
the control machine, and each host gets the wheelhouse for its own Python.
"""

from contextlib import ExitStack

from pyinfra import host

from mlopsdeploy.deployment.api import make_plan
from mlopsdeploy.deployment.control.bundle import build_release
from mlopsdeploy.deployment.control.host_lock import hold_lock
from mlopsdeploy.deployment.plans import deploy_app
from mlopsdeploy.deployment.results import DeployOptions

options = DeployOptions()
# The same host lock the library takes, kept on the host object so that it is held until the
# run ends (a module global would go, and with it the lock, once this file has been planned).
host.mlopsdeploy_lock = ExitStack()
host.mlopsdeploy_lock.enter_context(hold_lock(host, host.data.mlopsdeploy))
bundle = build_release(options.app_dir, options.model_dir, options.cache_dir)
deploy_app(plan=make_plan(host, host.data.mlopsdeploy, bundle, options))
