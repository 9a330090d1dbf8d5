"""Errors the storage layer raises for a person to act on."""


class StorageError(Exception):
    """The database cannot be used as it is; the message says what to do next."""


class MigrationError(StorageError):
    """The schema cannot be brought up to date; the database is left as it was."""
