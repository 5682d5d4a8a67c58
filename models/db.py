"""The one database handle, opened from a URL: SQLite in the instance folder by default,
PostgreSQL when `DATABASE_URL` says so."""
import contextlib
import hashlib
import os

from peewee import DatabaseProxy, PostgresqlDatabase, SqliteDatabase
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


def wait_turn(name: str) -> None:
    """Call inside a transaction: wait until no other transaction, on any host, holds the turn
    called `name`, and hold it until this transaction ends. SQLite needs nothing: its
    transactions take the one write lock when they begin (IMMEDIATE). On PostgreSQL it is a
    transaction-scoped advisory lock."""
    if isinstance(db.obj, PostgresqlDatabase):
        key = int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)
        db.execute_sql("SELECT pg_advisory_xact_lock(%s)", (key,))


@contextlib.contextmanager
def one_at_a_time(name: str):
    """Run the block alone among the blocks of this name on every host: on PostgreSQL in a
    transaction that holds the turn (wait_turn); on SQLite as it is, where the block's own
    writes queue at the file."""
    if isinstance(db.obj, PostgresqlDatabase):
        with db.atomic():
            wait_turn(name)
            yield
    else:
        yield
