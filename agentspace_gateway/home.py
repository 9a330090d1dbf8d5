"""The data home: one private directory holding the database, config, runtime file and vault."""

import logging
import os
import stat
from collections.abc import Mapping
from pathlib import Path

from attrs import frozen

log = logging.getLogger(__name__)

HOME_ENV = "AGENTSPACE_HOME"
DEFAULT_HOME = Path("~/.config/agentspace")


@frozen
class Home:
    root: Path

    @property
    def database(self) -> Path:
        return self.root / "agentspace.db"

    @property
    def config_file(self) -> Path:
        return self.root / "config.toml"

    @property
    def runtime_file(self) -> Path:
        return self.root / "runtime.json"

    @classmethod
    def locate(
        cls, override: str | Path | None = None, environ: Mapping[str, str] | None = None
    ) -> "Home":
        """--home beats AGENTSPACE_HOME beats ~/.config/agentspace."""
        env = os.environ if environ is None else environ
        chosen = override or env.get(HOME_ENV) or DEFAULT_HOME
        return cls(Path(chosen).expanduser().absolute())

    def ensure(self) -> "Home":
        """Create the directory private to its owner, tightening it if it was left open."""
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        mode = stat.S_IMODE(self.root.stat().st_mode)
        if mode & 0o077:
            log.warning(
                "%s was readable by other users (mode %03o); restricting it to 0700",
                self.root,
                mode,
            )
            self.root.chmod(0o700)
        return self
