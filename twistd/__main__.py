"""``python -m tapster.twistd``: the same as the ``twistd`` command."""

import os
import sys

# ``python -m`` puts the current directory first on sys.path, where the console script has its
# own bin/ directory: drop it, so that a folder in the run directory never shadows a plugin.
if sys.path and sys.path[0] in ("", os.getcwd()):
    del sys.path[0]

from tapster.twistd.cli import run  # after the sys.path fix, on purpose

run()
