"""The deploy: pyinfra operations and facts for the host, and the control machine's side of it.

- ``operations/`` and ``facts/`` run on the host (mirrored, one subsystem per module);
- ``control/`` runs on the control machine: wheelhouse, release bundle, host keys, SSH login
  checks, the health probe and the port forward;
- ``plans`` holds the ``@deploy`` functions, ``api`` the public ``deploy()`` / ``rollback()``,
  ``results`` what they return, ``pyinfra_run`` the plumbing between them and pyinfra.

Named ``deployment`` rather than ``deploy``: a subpackage ``mlopsdeploy.deploy`` would replace
the public function ``mlopsdeploy.deploy()`` as an attribute of the package once imported.
"""
