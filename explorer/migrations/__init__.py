"""Alembic migrations of the measurement database, applied by :func:`explorer.db.open_database`."""
