"""An app module whose import never returns (as a blocking network call at import would)."""

import time

time.sleep(3600)


class App:  # pragma: no cover - never reached
    pass
