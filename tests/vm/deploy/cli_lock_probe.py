"""A deploy file run after ``deploys/main.py`` by the CLI test: is the host lock still held?

By the time this runs, every operation of the deploy has run and the deploy file was planned
long ago; the lock must still be held (not given back when planning ended, nor collected).
"""

import gc

from pyinfra import host
from pyinfra.operations import python

from mlopsdeploy.deployment.host_commands import HOST_LOCK


def look() -> None:
    gc.collect()  # nothing but the run may keep the lock alive (paramiko holds channels weakly)
    lock = f"{host.data.mlopsdeploy.base_dir}/{HOST_LOCK}"
    _, output = host.run_shell_command(f"flock -w 3 {lock} true && echo free || echo taken")
    print(f"host lock: {output.stdout.strip()}", flush=True)


python.call(name="Look at the host lock", function=look)
