"""Alembic environment: run migrations on the connection `datamill.store.migrate` hands over."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from datamill.store import (
    generation_models,  # noqa: F401  (registers the generation tables)
    red_team_models,  # noqa: F401  (registers the red-teaming and judge tables)
)
from datamill.store.models import Base

config = context.config
target_metadata = Base.metadata


def _run(connection: object) -> None:
    context.configure(
        connection=connection,  # type: ignore[arg-type]
        target_metadata=target_metadata,
        render_as_batch=True,  # SQLite alters tables by copying them; batch mode does that for us
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


connection = config.attributes.get("connection")
if connection is not None:
    _run(connection)
else:  # the alembic CLI (writing a new revision): connect from the URL in the config
    engine = create_engine(config.get_main_option("sqlalchemy.url") or "sqlite://")
    with engine.begin() as conn:
        _run(conn)
