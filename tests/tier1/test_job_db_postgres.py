"""The job database on PostgreSQL (``pg_db.py``, ``pg_migrations.py``) against a real server
(``postgres_url``): the schema matches SQLite's, servers starting at once migrate once, a newer
schema is refused, a failing migration changes nothing, transactions nest as savepoints.

The repositories' behaviour on both backends is checked by the tests that use ``open_store``
(``test_job_db.py``, ``test_job_lifecycle.py``, ``test_job_list_queries.py``); the shared queue:
``test_job_claims.py``, ``test_job_shared_queue.py``.
"""

from __future__ import annotations

import sqlite3
import threading

import pytest

from myspinbot.server.migrations import SchemaTooNew
from myspinbot.server.store import JobStore


def pg_columns(url: str) -> dict[str, list[str]]:
    import psycopg

    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT table_name, column_name FROM information_schema.columns "
                            "WHERE table_schema = 'public' ORDER BY table_name, ordinal_position").fetchall()
    tables: dict[str, list[str]] = {}
    for table, column in rows:
        tables.setdefault(table, []).append(column)
    return tables


def pg_version(url: str) -> int:
    import psycopg

    with psycopg.connect(url) as conn:
        return conn.execute("SELECT version FROM myspinbot_schema").fetchone()[0]


def test_a_new_database_has_sqlites_tables_and_columns_plus_the_claim_and_server_columns(postgres_url, tmp_path):
    from myspinbot.server.pg_db import PgDatabase
    from myspinbot.server.pg_migrations import PG_MIGRATIONS

    JobStore(PgDatabase(postgres_url)).close()
    assert pg_version(postgres_url) == len(PG_MIGRATIONS)
    JobStore(tmp_path / "jobs.sqlite3").close()
    lite = sqlite3.connect(tmp_path / "jobs.sqlite3")
    sqlite_tables = {name: [r[1] for r in lite.execute(f"PRAGMA table_info({name})")]
                     for (name,) in lite.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    lite.close()
    pg = pg_columns(postgres_url)
    assert set(pg) == set(sqlite_tables) | {"myspinbot_schema", "servers"}  # servers: a shared queue's only
    assert pg["servers"] == ["id", "host", "models", "pipelines", "busy", "running", "started_at", "last_heartbeat"]
    for table, columns in sqlite_tables.items():
        extra = {"jobs": ["attempt", "worker", "lease_until", "requires"], "webhook_deliveries": ["rowid"]}.get(table, [])
        assert pg[table] == columns + extra, table


def test_servers_starting_at_once_on_a_new_database_migrate_it_once(postgres_url):
    from myspinbot.server.pg_db import PgDatabase
    from myspinbot.server.pg_migrations import PG_MIGRATIONS

    calls: list[int] = []

    def counted(conn):
        calls.append(1)
        conn.execute("CREATE TABLE counted (x INTEGER)")  # a second run would fail: the table exists

    migrations = (*PG_MIGRATIONS, counted)
    barrier = threading.Barrier(6)
    opened, errors = [], []

    def start() -> None:
        barrier.wait()
        try:
            opened.append(PgDatabase(postgres_url, migrations=migrations))
        except Exception as err:  # pragma: no cover - reported below
            errors.append(err)

    threads = [threading.Thread(target=start) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors and len(opened) == 6
    assert calls == [1] and {db.schema_version for db in opened} == {len(migrations)}
    for db in opened:
        db.close()


def test_a_database_from_a_newer_release_is_refused_untouched(postgres_url):
    from myspinbot.server.pg_db import PgDatabase
    from myspinbot.server.pg_migrations import PG_MIGRATIONS

    PgDatabase(postgres_url).close()
    import psycopg

    with psycopg.connect(postgres_url) as conn:
        conn.execute("UPDATE myspinbot_schema SET version = %s", (len(PG_MIGRATIONS) + 1,))
    with pytest.raises(SchemaTooNew, match="newer"):
        PgDatabase(postgres_url)
    assert pg_version(postgres_url) == len(PG_MIGRATIONS) + 1


def test_a_failing_migration_leaves_the_database_as_it_was(postgres_url):
    from myspinbot.server.pg_db import PgDatabase
    from myspinbot.server.pg_migrations import PG_MIGRATIONS

    PgDatabase(postgres_url, migrations=PG_MIGRATIONS[:2]).close()
    before = pg_columns(postgres_url)

    def broken(conn) -> None:
        conn.execute("CREATE TABLE half_done (x INTEGER)")
        raise RuntimeError("migration failed")

    with pytest.raises(RuntimeError, match="migration failed"):
        PgDatabase(postgres_url, migrations=(*PG_MIGRATIONS, broken))
    assert pg_columns(postgres_url) == before and pg_version(postgres_url) == 2


def test_a_transaction_commits_all_or_nothing_and_an_inner_one_is_a_savepoint(postgres_url):
    from myspinbot.server.pg_db import PgDatabase

    db = PgDatabase(postgres_url, migrations=())
    with db.transaction() as conn:
        conn.execute("CREATE TABLE t (x INTEGER)")
    with pytest.raises(ZeroDivisionError):
        with db.transaction() as conn:
            conn.execute("INSERT INTO t VALUES (?)", (1,))
            1 / 0
    with db.transaction() as conn:
        conn.execute("INSERT INTO t VALUES (?)", (2,))
        with pytest.raises(ZeroDivisionError):
            with db.transaction() as inner:
                assert inner is conn
                inner.execute("INSERT INTO t VALUES (?)", (3,))
                1 / 0
        with db.transaction() as inner:
            inner.execute("INSERT INTO t VALUES (?)", (4,))
        with db.read() as same:  # a read inside the transaction sees its writes
            assert same is conn and same.execute("SELECT COUNT(*) FROM t").fetchone()[0] == 2
    with db.read() as conn:
        assert [r[0] for r in conn.execute("SELECT x FROM t ORDER BY x")] == [2, 4]
        assert not conn.in_transaction
    db.close()


def test_threads_get_their_own_connections(postgres_url):
    from myspinbot.server.pg_db import PgDatabase

    db = PgDatabase(postgres_url, migrations=(), max_size=4)
    seen: list[int] = []
    inside = threading.Barrier(3)

    def work() -> None:
        with db.transaction() as conn:
            seen.append(conn.execute("SELECT pg_backend_pid()").fetchone()[0])
            inside.wait(10)  # all three hold a transaction at once

    threads = [threading.Thread(target=work) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(set(seen)) == 3
    db.close()


def test_placeholders_become_psycopgs_outside_quotes():
    from myspinbot.server.pg_db import pg_sql

    assert pg_sql("SELECT a FROM t WHERE b = ? AND c LIKE ? || '%'") == "SELECT a FROM t WHERE b = %s AND c LIKE %s || '%%'"
    assert pg_sql("SELECT '?', \"x?\" FROM t WHERE y = ?") == "SELECT '?', \"x?\" FROM t WHERE y = %s"


def test_a_write_waiting_for_a_row_lock_fails_instead_of_waiting_for_ever(postgres_url, monkeypatch):
    import psycopg

    from myspinbot.server import pg_db

    monkeypatch.setitem(pg_db.SESSION_LIMITS, "lock_timeout", "200ms")
    db = pg_db.PgDatabase(postgres_url, migrations=())
    with db.transaction() as conn:
        conn.execute("CREATE TABLE t (x INTEGER PRIMARY KEY)")
        conn.execute("INSERT INTO t VALUES (1)")
        assert conn.execute("SHOW idle_in_transaction_session_timeout").fetchone()[0] == "5min"
    holder = psycopg.connect(postgres_url)  # another server's open transaction holds the row
    holder.execute("SELECT x FROM t WHERE x = 1 FOR UPDATE")
    errors: list[Exception] = []

    def write() -> None:
        try:
            with db.transaction() as conn:
                conn.execute("UPDATE t SET x = 2 WHERE x = 1")
        except psycopg.errors.LockNotAvailable as err:
            errors.append(err)

    thread = threading.Thread(target=write)
    thread.start()
    thread.join(10)
    assert not thread.is_alive() and len(errors) == 1
    holder.close()
    with db.read() as conn:  # the pool's connection is still usable and the row unchanged
        assert conn.execute("SELECT x FROM t").fetchone()[0] == 1
    db.close()
