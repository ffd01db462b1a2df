"""The one settings tree an entry point builds and passes down."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from datamill.services.settings.entry import Settings
from datamill.services.settings.environment import read_environment
from datamill.services.settings.publish import PublishSettings
from datamill.services.settings.runs import RunSettings
from datamill.services.settings.server import ServerSettings


@dataclass(frozen=True)
class DatamillSettings:
    """Every setting, by section: the gateway and entry points, the server, runs, publishing."""

    llm: Settings
    server: ServerSettings
    runs: RunSettings
    publish: PublishSettings


def load_settings(env: Mapping[str, str] | None = None, *, data_dir: Path | None = None) -> DatamillSettings:
    """Read the environment once and build the tree.

    Args:
        env: the variables to read instead of the process environment.
        data_dir: overrides ``DATAMILL_HOME`` (the ``--data-dir`` option of ``serve`` and ``worker``).

    Raises:
        ConfigError: a variable that cannot be read, naming it.
    """
    values, environ = read_environment(env)
    llm = Settings.from_values(values, environ)
    if data_dir is not None:
        llm = Settings.from_values({**values, "DATAMILL_HOME": str(data_dir)}, environ)
    return DatamillSettings(
        llm=llm,
        server=ServerSettings.from_values(values, environ, data_dir=llm.data_dir),
        runs=RunSettings.from_values(values, environ),
        publish=PublishSettings.from_values(values),
    )
