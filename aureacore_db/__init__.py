"""aureacore-db: service configuration history from Git, in SQLite."""

__version__ = "0.1.0"
