"""`Store`: the metadata database, opened from a URL, with sessions and programmatic migrations.

`Store.from_url("sqlite:///path/datamill.db")` (the embedded default) or a PostgreSQL URL builds the engine;
nothing is connected or migrated until asked. `migrate()` brings the schema to the newest Alembic revision
and is safe to call on every start. `session()` is one transaction: it commits when the block ends and rolls
back if it raises.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from datamill.core.errors import ConfigError


class Store:
    """The metadata database: an engine, a session factory and the migrations.

    Args:
        engine: The SQLAlchemy engine to use; `from_url` builds one with the right options.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        # Rows outlive their session (services hand them to routes), so commit must not expire them.
        self._sessions = sessionmaker(engine, expire_on_commit=False)

    @classmethod
    def from_url(cls, url: str) -> Store:
        """Build a store for a database URL; a SQLite file's directory is created if missing.

        Raises:
            ConfigError: The URL cannot be parsed or names no installed driver.
        """
        try:
            parsed = make_url(url)
        except Exception as exc:  # sqlalchemy raises ArgumentError and others; all mean "bad URL"
            raise ConfigError(f"invalid database URL {url!r}: {exc}") from exc
        kwargs: dict[str, Any] = {}
        if parsed.get_backend_name() == "sqlite":
            kwargs["connect_args"] = {"check_same_thread": False, "timeout": 30}
            if parsed.database and parsed.database != ":memory:":
                Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        else:
            kwargs["pool_pre_ping"] = True
        try:
            engine = create_engine(parsed, **kwargs)
        except Exception as exc:  # a missing driver surfaces here as ModuleNotFoundError/NoSuchModuleError
            raise ConfigError(f"cannot open database URL {parsed!r}: {exc}") from exc
        if parsed.get_backend_name() == "sqlite":
            event.listen(engine, "connect", _sqlite_pragmas)
        return cls(engine)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """One transaction: committed when the block ends, rolled back if it raises."""
        with self._sessions.begin() as session:
            yield session

    def migrate(self) -> None:
        """Upgrade the schema to the newest migration (a no-op when it is current)."""
        from datamill.store.migrate import upgrade  # alembic is imported only when migrating

        upgrade(self.engine)

    def close(self) -> None:
        """Release every pooled connection."""
        self.engine.dispose()


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets readers run while a writer commits (the server reads from many threads); foreign keys are off
    # by default in SQLite; busy_timeout makes a writer wait for the lock instead of failing at once.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()
