"""`python -m devstack`: the local stack in the foreground (what `make run` runs)."""

import os
import sys

from devstack.supervisor import run

sys.exit(run(dict(os.environ)))
