"""The models the server's ``/api/v1/models`` lists: every model the routing in effect can serve now.

The routing is the shipped routing file overlaid by the operator's (``DATAMILL_ROUTES``), as for runs. A
model is listed when it is named exactly in the routing (a pattern such as ``ollama/*`` names no model) or
is the server's model (``DATAMILL_MODEL``), and when its route can be used now: its endpoint variable
(``base_url_env``) and its key variable (``api_key_env``) were set when the server started. So an operator
exposes a provider's models by setting its key, and hides one by leaving it unset. ``created`` is when the
routing file that names the model was last modified (datamill does not record when a model was added);
``owned_by`` is the route's provider kind.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import yaml

from datamill.core.errors import ConfigError, UnknownModelError
from datamill.llm.routing import Routing
from datamill.services.settings.entry import Settings


@dataclass(frozen=True)
class ModelEntry:
    """One listed model."""

    id: str
    created: int
    owned_by: str


def _shipped_mtime() -> int:
    shipped = resources.files("datamill.llm").joinpath("routes.yaml")
    try:
        return int(Path(str(shipped)).stat().st_mtime)
    except OSError:  # the package is not on a file system (a zip): no time to tell
        return 0


class ModelCatalog:
    """Lists the models the routing serves; see the module docstring."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._entries: list[ModelEntry] | None = None

    def routing(self) -> Routing:
        """The routing in effect, with the keys and endpoints the entry point read.

        Raises:
            ConfigError: the operator's routing file is missing or invalid.
        """
        return Routing.load(self._settings.routes_path, environ=self._settings.environ)

    def available(self) -> list[ModelEntry]:
        """The usable models, the server's model first, then in routing-file order (worked out once)."""
        if self._entries is None:
            self._entries = self._build()
        return list(self._entries)

    def _build(self) -> list[ModelEntry]:
        routing = self.routing()
        routes_path = self._settings.routes_path
        user_names: set[str] = set()
        user_mtime = 0
        if routes_path is not None:
            user_mtime = int(routes_path.stat().st_mtime)
            user_names = _user_names(routes_path)
        shipped_mtime = _shipped_mtime()
        names = [n for n in routing.names() if not any(c in n for c in "*?[")]
        server_model = self._settings.model
        if server_model and server_model not in names:
            names.insert(0, server_model)
        elif server_model:
            names.remove(server_model)
            names.insert(0, server_model)
        entries: list[ModelEntry] = []
        for name in names:
            try:
                route = routing.resolve(name)
            except (ConfigError, UnknownModelError):  # an unset endpoint variable, or no matching route
                continue
            if route.api_key_env and not route.api_key:
                continue
            created = user_mtime if name in user_names else shipped_mtime
            entries.append(ModelEntry(id=name, created=created, owned_by=route.provider))
        return entries


def _user_names(path: Path) -> set[str]:
    """The names the operator's routing file gives (it was validated when the routing loaded)."""
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    routes = data.get("routes") if isinstance(data, dict) else None
    return {str(key) for key in routes} if isinstance(routes, dict) else set()
