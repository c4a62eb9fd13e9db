"""The job service's PostgreSQL database: the same interface as ``db.Database`` over a psycopg 3
connection pool, so every repository runs unchanged on either backend.

``PgDatabase(url)`` opens a pool (``psycopg_pool.ConnectionPool``, connections in autocommit)
and brings the schema up to date (``pg_migrations.py``: versioned, under an advisory lock, so
several servers starting at once migrate once). ``read()`` and ``transaction()`` hand out a
connection of the pool for the block; a block opened inside another on the same thread gets the
same connection (an inner ``transaction()`` is a savepoint of the outer one, a ``read()`` sees
the outer transaction's writes), exactly as the single SQLite connection behaves.

The repositories write their statements with SQLite's ``?`` placeholders and portable SQL
(``INSERT ... ON CONFLICT``, row values); ``pg_sql`` turns the placeholders into psycopg's
``%s``. That translation and the schema (``pg_migrations.py``) are the only SQL differences.

psycopg is imported when a ``PgDatabase`` is opened, never by the embedded SQLite default.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from ..errors import DatabaseUnavailableError
from .pg_migrations import PG_MIGRATIONS, PgMigration, migrate

log = logging.getLogger("myspinbot.db")

CONNECT_TIMEOUT_S = 10.0
"""How long opening the pool at start may take before an error."""
WAIT_S = 5.0
"""How long a call waits for a free connection of the pool (all busy) before an error."""
PROBE_S = 1.0
"""While the database is unreachable: how often a background probe tries to connect."""
SESSION_LIMITS = {"lock_timeout": "30s", "idle_in_transaction_session_timeout": "5min"}
"""Set on every pooled connection: no statement waits for a row lock for ever, and a transaction
left open by a stalled thread is ended by the server (its locks with it)."""


def _configure(conn: Any) -> None:
    """``ConnectionPool(configure=...)``: the ``SESSION_LIMITS`` (the URL's own options stay)."""
    for name, value in SESSION_LIMITS.items():
        conn.execute(f"SET {name} = '{value}'")


@functools.lru_cache(maxsize=1024)
def pg_sql(sql: str) -> str:
    """``sql`` with every ``?`` placeholder outside a quoted literal or identifier turned into
    ``%s`` and every literal ``%`` doubled (psycopg's format)."""
    out, quote = [], None
    for ch in sql:
        if quote:
            if ch == quote:
                quote = None
        elif ch in ("'", '"'):
            quote = ch
        elif ch == "?":
            out.append("%s")
            continue
        out.append("%%" if ch == "%" else ch)
    return "".join(out)


class PgConnection:
    """A pooled psycopg connection seen through the ``sqlite3.Connection`` methods the
    repositories use: ``execute(sql, params)`` returns a cursor (``fetchone``, ``fetchall``,
    ``rowcount``, iteration)."""

    def __init__(self, conn: Any):
        self.raw = conn

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        return self.raw.execute(pg_sql(sql), tuple(params))

    @property
    def in_transaction(self) -> bool:
        from psycopg.pq import TransactionStatus

        return self.raw.info.transaction_status != TransactionStatus.IDLE


class PgDatabase:
    """A pool of connections to the PostgreSQL database at ``url`` (``postgresql://user:pass@host/db``).

    Opening applies the pending ``migrations`` (default: all of ``PG_MIGRATIONS``). Raises
    ``migrations.SchemaTooNew`` when the database was written by a newer schema than this code
    knows, ``psycopg.OperationalError`` / ``psycopg_pool.PoolTimeout`` when it cannot be reached
    within ``timeout_s``. Safe to share between threads (each thread gets its own connection).

    Once open, losing the server raises ``DatabaseUnavailableError`` (the API's 503): the first
    call that finds a connection broken marks the database down, and from then on every call
    fails at once, without waiting, until a background probe connects again (every ``PROBE_S``)."""

    backend = "postgresql"
    path = None  # no file: ``JobStore.path`` is None on PostgreSQL

    def __init__(self, url: str, *, min_size: int = 1, max_size: int = 8, timeout_s: float = CONNECT_TIMEOUT_S,
                 migrations: tuple[PgMigration, ...] = PG_MIGRATIONS):
        from psycopg_pool import ConnectionPool

        self.url = url
        self._local = threading.local()
        self._down_since: float | None = None  # monotonic time the database was found unreachable
        self._down_lock = threading.Lock()
        self._pool = ConnectionPool(url, min_size=min_size, max_size=max_size, timeout=WAIT_S, open=False,
                                    kwargs={"autocommit": True}, name="myspinbot", configure=_configure,
                                    check=ConnectionPool.check_connection)
        try:
            self._pool.open(wait=True, timeout=timeout_s)
            with self.transaction() as conn:
                self.schema_version = migrate(conn, migrations)
        except BaseException:
            self._pool.close()
            raise

    @property
    def available(self) -> bool:
        """False while the database is marked unreachable."""
        return self._down_since is None

    @contextmanager
    def _connection(self) -> Iterator[PgConnection]:
        """This thread's connection: the one an enclosing block holds, else one of the pool."""
        held = getattr(self._local, "conn", None)
        if held is not None:
            yield held
            return
        import psycopg

        if self._down_since is not None:
            raise DatabaseUnavailableError(f"the job database has been unreachable for "
                                           f"{time.monotonic() - self._down_since:.0f} s; retry shortly")
        raw = None
        try:
            with self._pool.connection() as raw:
                self._local.conn = PgConnection(raw)
                try:
                    yield self._local.conn
                finally:
                    self._local.conn = None
        except psycopg.OperationalError as err:  # PoolTimeout included
            from psycopg_pool import PoolTimeout

            if raw is not None and not raw.broken:
                raise  # a failing statement on a healthy connection (a lock timeout, a deadlock)
            if raw is None and (not isinstance(err, PoolTimeout) or self._probe_ok()):
                raise  # no connection free in time while the server answers: a busy database, not a lost one
            raise self._mark_down(err) from err

    def _probe_ok(self) -> bool:
        import psycopg

        try:
            psycopg.connect(self.url, connect_timeout=2).close()
            return True
        except psycopg.Error:
            return False

    def _mark_down(self, err: Exception) -> DatabaseUnavailableError:
        with self._down_lock:
            if self._down_since is None:
                self._down_since = time.monotonic()
                log.warning("myspinbot: the job database is unreachable (%s); answering 503 until it is back", err)
                threading.Thread(target=self._probe_until_up, name="myspinbot-db-probe", daemon=True).start()
        return DatabaseUnavailableError("the job database cannot be reached; retry shortly")

    def _probe_until_up(self) -> None:
        while not self._probe_ok():
            time.sleep(PROBE_S)
            if self._pool.closed:
                return
        self._pool.check()  # drop the connections the outage broke
        with self._down_lock:
            down_s = time.monotonic() - (self._down_since or time.monotonic())
            self._down_since = None
        log.warning("myspinbot: the job database is reachable again (after %.1f s)", down_s)

    @contextmanager
    def read(self) -> Iterator[PgConnection]:
        """A connection for the block: for reads (each statement commits on its own when no
        transaction is open; inside one, it sees that transaction's writes)."""
        with self._connection() as conn:
            yield conn

    @contextmanager
    def transaction(self) -> Iterator[PgConnection]:
        """A connection inside a transaction: committed when the block ends, rolled back (and
        the error re-raised) when it raises. A transaction opened inside another on the same
        thread is a savepoint of it."""
        with self._connection() as conn, conn.raw.transaction():
            yield conn

    def close(self) -> None:
        self._pool.close()
