"""`python -m mlopsdeploy.watchdog` = `mlopsdeploy watch`."""

import sys

from mlopsdeploy.watchdog.cli import main

sys.exit(main())
