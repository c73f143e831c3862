"""Alembic environment: runs against the connection handed over by ``store.migrate``."""

from alembic import context

from openlam.memory.tables import metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
