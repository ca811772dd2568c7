"""``python -m flower_actors.flower``: the same as ``flower-actors-supernode``."""

import sys

from .supernode import main

if __name__ == "__main__":
    sys.exit(main())
