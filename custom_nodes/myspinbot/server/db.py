"""The job service's SQLite database: one file, one connection, one lock, shared by every repository.

``Database(path)`` opens (or creates) the file in WAL mode and brings its schema up to date
(``migrations.py``). Repositories (``repos/``) never hold a connection of their own: they run
statements through ``read()`` (one statement or several reads, under the lock) or
``transaction()`` (writes: all or nothing). The connection is shared between threads; the lock
serialises every use of it.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .migrations import MIGRATIONS, Migration, migrate

BUSY_TIMEOUT_S = 10.0
"""How long a statement waits for another connection's write lock (another process, or a test's
second connection) before ``sqlite3.OperationalError: database is locked``."""


class Database:
    """One SQLite connection to ``path`` (``":memory:"`` for a private in-memory database).

    Opening creates the parent folder, switches to WAL with ``synchronous=NORMAL`` and applies
    the pending ``migrations`` (default: all of ``migrations.MIGRATIONS``). Raises
    ``migrations.SchemaTooNew`` when the file was written by a newer schema than this code knows,
    ``sqlite3.Error`` when it cannot be opened."""

    backend = "sqlite"

    def __init__(self, path: Path | str, *, timeout_s: float = BUSY_TIMEOUT_S,
                 migrations: tuple[Migration, ...] = MIGRATIONS):
        self.path = Path(path)
        if str(path) != ":memory:":
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._depth = 0  # open transaction() levels; only changed with the lock held
        self._conn = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None, timeout=timeout_s)
        try:
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=NORMAL")
            with self.transaction() as conn:
                self.schema_version = migrate(conn, migrations)
        except BaseException:
            self._conn.close()
            raise

    @contextmanager
    def read(self) -> Iterator[sqlite3.Connection]:
        """The connection, with the lock held for the block: for reads (each statement commits on
        its own when no transaction is open)."""
        with self._lock:
            yield self._conn

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """The connection inside a write transaction: committed when the block ends, rolled back
        (and the error re-raised) when it raises.

        The outermost level takes SQLite's write lock at once (``BEGIN IMMEDIATE``); a
        transaction opened inside another is a savepoint of it, so a failing inner block undoes
        only its own statements and the outer one decides what is committed."""
        with self._lock:
            level = self._depth
            self._conn.execute("BEGIN IMMEDIATE" if level == 0 else f"SAVEPOINT level_{level}")
            self._depth += 1
            try:
                yield self._conn
                self._conn.execute("COMMIT" if level == 0 else f"RELEASE level_{level}")
            except BaseException:
                self._undo(level)
                raise
            finally:
                self._depth -= 1

    def _undo(self, level: int) -> None:
        """Roll back the transaction (level 0) or the savepoint ``level`` and leave it."""
        if level == 0:
            if self._conn.in_transaction:
                self._conn.execute("ROLLBACK")
        else:
            self._conn.execute(f"ROLLBACK TO level_{level}")
            self._conn.execute(f"RELEASE level_{level}")

    def close(self) -> None:
        with self._lock:
            self._conn.close()
