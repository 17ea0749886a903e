"""Alembic environment of the records store: runs on the connection the store hands over
(`RecordStore.migrate`), or on `sqlalchemy.url` for the `alembic` command line."""

from __future__ import annotations

from alembic import context
from sqlalchemy import engine_from_config, pool

from activities.records.schema import metadata

config = context.config


def run() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        context.configure(connection=connection, target_metadata=metadata)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = engine_from_config(
        config.get_section(config.config_ini_section, {}),
        prefix="sqlalchemy.",
        poolclass=pool.NullPool,
    )
    with engine.connect() as conn:
        context.configure(connection=conn, target_metadata=metadata)
        with context.begin_transaction():
            context.run_migrations()


run()
