"""``python -m flower_actors.flower``: the same as ``flower-actors-supernode``."""

import sys

from .supernode import main

sys.exit(main())
