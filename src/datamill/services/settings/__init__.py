"""The settings tree: every setting of datamill, read from the environment once, at an entry point.

`load_settings` reads the process environment (the only code in datamill that does) and returns a
`DatamillSettings`; the CLI commands, the server's app factory and the worker build it and pass its sections
down. Each section documents its variables: `entry` (data dir, routing, model, event loop, network
guard), `server`, `runs`, `publish`.
"""

from datamill.services.settings.entry import Settings
from datamill.services.settings.publish import PublishSettings
from datamill.services.settings.runs import RunSettings
from datamill.services.settings.server import ServerSettings
from datamill.services.settings.tree import DatamillSettings, load_settings

__all__ = [
    "DatamillSettings",
    "PublishSettings",
    "RunSettings",
    "ServerSettings",
    "Settings",
    "load_settings",
]
