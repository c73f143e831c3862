"""``python -m openlam``: the CLI.

For ``-m``, Python puts the current directory first on ``sys.path``. In a workspace that
is where plans write files: a plan's ``typer.py`` would run as code at the next start,
before any of OpenLAM's own checks. It is taken off before anything else is imported
(the ``openlam`` console script never had it)."""

import os
import sys

if sys.path and sys.path[0] in ("", os.getcwd()):
    del sys.path[0]

from openlam.cli.main import main  # after the path is fixed

main()
