"""``python -m mlopsdeploy`` is the ``mlopsdeploy`` command (what ``make demo`` runs)."""

import sys

from mlopsdeploy.cli import main

sys.exit(main())
