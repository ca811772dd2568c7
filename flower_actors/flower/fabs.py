"""``FabStore``: each FAB installed once per hash, never two installs at once, never half an install.

flwr's ``install_from_fab`` checks whether the app folder exists and then
copies into it: two at once, or one killed midway, leave a folder that
looks installed and is not. Here an install runs under an exclusive file
lock in ``$FLWR_HOME`` (so nodes sharing the folder also take turns), into
a private folder first, which is then renamed into place in one step.
"""

from __future__ import annotations

import contextlib
import fcntl
import io
import shutil
import tempfile
from pathlib import Path

from flwr.cli.install import install_from_fab
from flwr.common.config import get_fused_config_from_fab
from flwr.supercore.fab import Fab
from flwr.supercore.run import Run
from flwr.supercore.utils import get_flwr_home

from ..errors import FabError

__all__ = ["FabStore"]

LOCK_NAME = ".flower-actors-install.lock"
APPS = "apps"


class FabStore:
    """The FABs this node has installed (by hash) and the run configs fused from them."""

    def __init__(self, home: Path | None = None) -> None:
        self.home = home or get_flwr_home()
        self.installed: dict[str, Path] = {}  # fab hash -> app folder
        self.installs = 0

    def install(self, fab: Fab) -> Path:
        """The installed app folder of ``fab``, installing it first if no one has."""
        done = self.installed.get(fab.hash_str)
        if done is not None and done.exists():
            return done
        self.home.mkdir(parents=True, exist_ok=True)
        try:
            with open(self.home / LOCK_NAME, "a+b") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX)
                path = self._install_locked(fab)
        except FabError:
            raise
        except BaseException as exc:  # click.ClickException is a plain Exception; SystemExit from typer too
            raise FabError(f"cannot install FAB {fab.hash_str[:8]}: {type(exc).__name__}: {exc}") from None
        self.installed[fab.hash_str] = path
        return path

    def _install_locked(self, fab: Fab) -> Path:
        staging = Path(tempfile.mkdtemp(prefix=".installing-", dir=self.home))
        try:
            with contextlib.redirect_stdout(io.StringIO()):  # flwr prints "Successfully installed ..."
                staged = install_from_fab(fab.content, install_dir=staging, skip_prompt=True)
            final = self.home / APPS / staged.name
            if not final.exists():
                final.parent.mkdir(parents=True, exist_ok=True)
                staged.rename(final)
                self.installs += 1
            return final
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    @staticmethod
    def run_config(fab: Fab, run: Run) -> dict[str, object]:
        """The FAB's config with the run's overrides, as Flower's node fuses them."""
        try:
            return dict(get_fused_config_from_fab(fab.content, run))
        except Exception as exc:
            raise FabError(f"cannot read the config of FAB {fab.hash_str[:8]}: {type(exc).__name__}: {exc}") from None
