"""``python -m symprop`` runs the command line."""

import sys

from ._launch import main

sys.exit(main())
