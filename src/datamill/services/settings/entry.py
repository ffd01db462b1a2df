"""Settings of the entry points and the model gateway, read from the environment once, in a factory.

| variable                     | meaning                                                  | default     |
|------------------------------|----------------------------------------------------------|-------------|
| DATAMILL_HOME                | data directory (response cache, the server's DB)         | see below   |
| DATAMILL_ROUTES              | a routing file whose entries override the shipped ones   | (none)      |
| DATAMILL_MODEL               | the model used when a command names none                 | the routes' |
| DATAMILL_TEMPLATES           | a folder of prompt templates overriding the built-in ones | (none)     |
| DATAMILL_EVENT_LOOP          | ``auto`` (uvloop where installed), ``uvloop``, ``asyncio`` | auto      |
| DATAMILL_BLOCK_REMOTE_MODELS | ``1``: refuse model and fetch requests to remote hosts   | 0           |
| DATAMILL_FETCH_ALLOW         | internal hosts and networks the safe fetcher may reach   | (none)      |

The data directory defaults to ``$XDG_DATA_HOME/datamill`` (``~/.local/share/datamill``).

A route's API key and endpoint come from the variables the route names (``api_key_env``,
``base_url_env``); they are read with the rest, once, and resolved once per route.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from datamill.services.settings.environment import read_environment

_TRUE = ("1", "true", "yes", "on")


@dataclass(frozen=True)
class Settings:
    """What a CLI command or a Python caller needs to reach the models; build with `from_env` or directly.

    Attributes:
        data_dir: the data directory (response cache, the server's database and blobs).
        routes_path: a user routing file overriding the shipped routes.
        model: the model used when a command names none.
        environ: the environment as the entry point read it; routes take their keys and endpoints from it.
        event_loop: the event loop of datamill's own entry points (see `datamill.llm.event_loop`).
        block_remote: refuse model and fetch requests to hosts other than loopback.
        fetch_allow: internal hosts and networks the safe fetcher may reach.
        memory_pool: pyarrow's memory pool chosen by the operator (``ARROW_DEFAULT_MEMORY_POOL``), if any.
        templates_dir: prompt templates overriding the built-in ones by name (command line, Python API).
    """

    data_dir: Path
    routes_path: Path | None = None
    model: str | None = None
    environ: Mapping[str, str] = field(default_factory=dict, repr=False, compare=False)
    event_loop: str = "auto"
    block_remote: bool = False
    fetch_allow: tuple[str, ...] = ()
    memory_pool: str | None = None
    templates_dir: Path | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Read the variables of the module docstring from `env` (default: the process environment)."""
        values, environ = read_environment(env)
        return cls.from_values(values, environ)

    @classmethod
    def from_values(cls, values: Mapping[str, str], environ: Mapping[str, str]) -> Settings:
        """The settings the declared variables `values` describe; `environ` is kept for the routes."""
        home = values.get("DATAMILL_HOME")
        if home:
            data_dir = Path(home).expanduser()
        else:
            xdg = values.get("XDG_DATA_HOME") or str(Path("~/.local/share").expanduser())
            data_dir = Path(xdg) / "datamill"
        routes = values.get("DATAMILL_ROUTES")
        allow = values.get("DATAMILL_FETCH_ALLOW", "")
        return cls(
            data_dir=data_dir,
            routes_path=Path(routes).expanduser() if routes else None,
            model=values.get("DATAMILL_MODEL") or None,
            environ=dict(environ),
            event_loop=(values.get("DATAMILL_EVENT_LOOP") or "auto").strip().lower() or "auto",
            block_remote=values.get("DATAMILL_BLOCK_REMOTE_MODELS", "").strip().lower() in _TRUE,
            fetch_allow=tuple(entry.strip() for entry in allow.split(",") if entry.strip()),
            memory_pool=values.get("ARROW_DEFAULT_MEMORY_POOL") or None,
            templates_dir=Path(templates).expanduser()
            if (templates := values.get("DATAMILL_TEMPLATES"))
            else None,
        )

    @property
    def cache_path(self) -> Path:
        return self.data_dir / "cache" / "responses.sqlite3"
