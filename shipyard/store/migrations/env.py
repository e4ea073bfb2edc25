"""Alembic environment for Shipyard's metadata database.

Shipyard runs migrations in code (:func:`shipyard.store.db.upgrade`), handing over an open
connection in ``config.attributes["connection"]``. For development (autogenerating a new
revision), a URL in the ``sqlalchemy.url`` option works too.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

from shipyard.store import schema
from shipyard.store.db import Database

config = context.config


def _configure(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=schema.metadata,
        # SQLite alters tables by copying them; batch mode does that for later migrations.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )


def run_online() -> None:
    """Migrate through the caller's connection, or open one for ``sqlalchemy.url``."""
    connection = config.attributes.get("connection")
    if connection is not None:
        _configure(connection)
        with context.begin_transaction():
            context.run_migrations()
        return
    url = config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("set sqlalchemy.url, or run migrations with `shipyard db upgrade`")
    db = Database(url, pool_size=1)
    try:

        def migrate(conn: Connection) -> None:
            _configure(conn)
            with context.begin_transaction():
                context.run_migrations()

        db.write(migrate)
    finally:
        db.dispose()


def run_offline() -> None:
    """Print the migration SQL for ``sqlalchemy.url``'s dialect instead of running it."""
    context.configure(
        url=config.get_main_option("sqlalchemy.url"),
        target_metadata=schema.metadata,
        literal_binds=True,
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
