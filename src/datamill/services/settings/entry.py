"""Settings for entry points, read from the environment once, in a factory (never at import).

| variable            | meaning                                           | default                    |
|---------------------|---------------------------------------------------|----------------------------|
| DATAMILL_HOME       | data directory (response cache, later the DB)     | ~/.local/share/datamill    |
| DATAMILL_ROUTES     | a routing file whose entries override the shipped | (none)                     |
| DATAMILL_MODEL      | the model used when a command names none          | the routing file's default |
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    routes_path: Path | None = None
    model: str | None = None

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        env = dict(os.environ) if env is None else env
        home = env.get("DATAMILL_HOME")
        if home:
            data_dir = Path(home).expanduser()
        else:
            xdg = env.get("XDG_DATA_HOME") or str(Path("~/.local/share").expanduser())
            data_dir = Path(xdg) / "datamill"
        routes = env.get("DATAMILL_ROUTES")
        return cls(
            data_dir=data_dir,
            routes_path=Path(routes).expanduser() if routes else None,
            model=env.get("DATAMILL_MODEL") or None,
        )

    @property
    def cache_path(self) -> Path:
        return self.data_dir / "cache" / "responses.sqlite3"
