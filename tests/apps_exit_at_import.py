"""An app module whose import kills the process (as a broken C extension would)."""

import os
import sys

if os.environ.get("FLOWER_ACTORS_TEST_IMPORT_DEATH", "exit") == "segfault":
    import ctypes

    ctypes.string_at(0)  # SIGSEGV
os._exit(7)
sys.exit("unreachable")  # pragma: no cover


class App:  # pragma: no cover - never reached
    pass
