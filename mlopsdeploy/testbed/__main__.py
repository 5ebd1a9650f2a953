import sys

from mlopsdeploy.testbed.cli import main

sys.exit(main())
