"""Alembic environment of the catalog; `liftlog.catalog.migrate.upgrade` runs it to head."""
