"""The one database handle, opened from a URL: SQLite in the instance folder by default,
PostgreSQL when `DATABASE_URL` says so."""
import os

from peewee import DatabaseProxy, SqliteDatabase
from playhouse.db_url import connect

db = DatabaseProxy()


def open_database(url: str):
    """Open the database at `url` and bind the shared handle to it."""
    if url.startswith("sqlite:///"):
        path = url[len("sqlite:///"):]
        if path != ":memory:" and not os.path.exists(path):
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))   # owner-only from birth
        # WAL lets readers go on while one writer commits; the busy timeout makes a
        # second writer (a cron job beside the web process) wait instead of failing.
        # IMMEDIATE: a transaction takes the write lock when it begins, so one that reads
        # and then writes (the audit chain) waits its turn rather than failing mid-way.
        database = SqliteDatabase(
            path, pragmas={"busy_timeout": 10000, "foreign_keys": 1, "synchronous": "normal"},
            timeout=10, lock_type="IMMEDIATE")
        # WAL is a property of the file: set once here, not on every connection.
        with database.connection_context():
            database.execute_sql("PRAGMA journal_mode=wal")
    else:
        database = connect(url)
    db.initialize(database)
    return database
