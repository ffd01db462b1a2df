"""A fresh PostgreSQL database per test, on the server `DATAMILL_TEST_POSTGRES_URL` names.

`scripts/start-postgres.sh` starts such a server (`.ci/run` does, so CI runs these tests); without the
variable the PostgreSQL tests skip, saying so. Each test gets a database of its own, created empty and
dropped after, so tests never see each other's rows or a schema an earlier test left.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from datamill.store import Store

PG_ENV = "DATAMILL_TEST_POSTGRES_URL"
#: The databases the store contract runs on; parametrise a fixture over these and call `database_url`.
KINDS = ("sqlite", "postgresql")
SERVER_TIME_ZONE = "Pacific/Auckland"
SKIP_REASON = f'{PG_ENV} is unset: start a server with `eval "$(scripts/start-postgres.sh)"` (.ci/run does)'


def postgres_url() -> str:
    """The test server's URL, or skip the calling test when none is configured."""
    url = os.environ.get(PG_ENV, "")
    if not url:
        pytest.skip(SKIP_REASON)
    return url


@contextmanager
def fresh_database(admin_url: str) -> Iterator[str]:
    """Create an empty, uniquely named database next to `admin_url`'s; yield its URL; drop it after."""
    name = f"datamill_t_{secrets.token_hex(6)}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")  # CREATE DATABASE refuses a transaction
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
            # A server far from UTC, so a datetime that reaches the database without going through the
            # models' UTC type (and so gets converted to local time) shows up as a wrong value in the tests.
            connection.execute(text(f"ALTER DATABASE \"{name}\" SET timezone TO '{SERVER_TIME_ZONE}'"))
        try:
            yield make_url(admin_url).set(database=name).render_as_string(hide_password=False)
        finally:
            with admin.connect() as connection:  # FORCE: a leaked pooled connection must not keep it alive
                connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()


@contextmanager
def database_url(kind: str, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database of `kind` (``sqlite`` or ``postgresql``) for one test."""
    if kind == "sqlite":
        yield f"sqlite:///{tmp_path / 'fresh.db'}"
        return
    with fresh_database(postgres_url()) as url:
        yield url


@contextmanager
def migrated_store(kind: str, tmp_path: Path) -> Iterator[Store]:
    """A `Store` on a fresh database of `kind` with every migration applied; closed at the end."""
    with database_url(kind, tmp_path) as url:
        made = Store.from_url(url)
        try:
            made.migrate()
            yield made
        finally:
            made.close()
