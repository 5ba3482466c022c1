"""python -m l2l.sweep (l2l.sweep.cli)."""

import sys

from l2l.sweep.cli import main

sys.exit(main())
