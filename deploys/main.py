"""pyinfra deploy file: ``pyinfra inventory.py deploys/main.py`` (hosts and access: inventory.py).

Runs for each host what ``mlopsdeploy deploy`` runs (mlopsdeploy/deployment/deploy_file.py): the
host lock, the same ``@deploy``, then the lockdown check and the final probe. The release (app
wheel + model) is built once per run; each host gets the wheelhouse for its own Python.
"""

from pyinfra import host

from mlopsdeploy.deployment.deploy_file import deploy_host
from mlopsdeploy.deployment.results import DeployOptions

deploy_host(host, DeployOptions())
