"""A throwaway PostgreSQL server for tests: ``initdb`` into a temporary folder, ``pg_ctl start``
on a free loopback port, one fresh database per test, ``pg_ctl stop`` and the folder removed at
the end.

The binaries are looked up on ``PATH``, then in ``/usr/lib/postgresql/<newest>/bin`` (Debian's
``postgresql`` package, which ``.ci/run`` installs). PostgreSQL refuses to run as root: under
root the server runs as the ``postgres`` user (created by that package) through ``runuser``.

When the binaries or psycopg are missing the PostgreSQL tests are skipped with a loud reason
and a warning, unless ``MYSPINBOT_TEST_REQUIRE_POSTGRES=1`` (``.ci/run`` sets it): then they fail.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
import warnings
from pathlib import Path

import pytest

REQUIRE = "MYSPINBOT_TEST_REQUIRE_POSTGRES"
SUPERUSER = "myspinbot"


def _bindir() -> Path | None:
    found = shutil.which("pg_ctl")
    if found and shutil.which("initdb"):
        return Path(found).parent
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"),
                      key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0)
    return versions[-1].parent if versions else None


def unavailable(why: str) -> None:
    """Skip (loudly) or, when ``MYSPINBOT_TEST_REQUIRE_POSTGRES=1``, fail."""
    message = f"PostgreSQL tests NOT RUN: {why}"
    if os.environ.get(REQUIRE) == "1":
        pytest.fail(message + f" ({REQUIRE}=1)")
    warnings.warn(message, pytest.PytestWarning, stacklevel=2)
    pytest.skip(message)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PostgresServer:
    """One PostgreSQL cluster on ``127.0.0.1:port``, superuser ``myspinbot``, trust auth on loopback."""

    def __init__(self) -> None:
        bindir = _bindir()
        if bindir is None:
            unavailable("initdb/pg_ctl not found (apt-get install postgresql; .ci/run does)")
        try:
            import psycopg  # noqa: F401
            import psycopg_pool  # noqa: F401
        except ImportError:
            unavailable("psycopg is not installed (pip install 'psycopg[binary,pool]'; see requirements.txt)")
        self.bindir = bindir
        self.user: str | None = None
        if os.geteuid() == 0:
            try:
                pwd.getpwnam("postgres")
            except KeyError:
                unavailable("running as root and there is no 'postgres' user to run the server as")
            self.user = "postgres"
        # Not under pytest's tmp_path: its parents are private to root, the server user must reach it.
        self.dir = Path(tempfile.mkdtemp(prefix="myspinbot-pg-"))
        self.data = self.dir / "data"
        self.port = _free_port()
        self.log = self.dir / "server.log"
        self._started = False

    def _run(self, *args: str) -> None:
        command = [str(self.bindir / args[0]), *args[1:]]
        if self.user is not None:
            command = ["runuser", "-u", self.user, "--", *command]
        done = subprocess.run(command, capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            log = self.log.read_text(errors="replace")[-4000:] if self.log.exists() else ""
            raise RuntimeError(f"{' '.join(args[:1])} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}\n{log}")

    def start(self) -> "PostgresServer":
        if self.user is not None:
            shutil.chown(self.dir, self.user)
        self._run("initdb", "-D", str(self.data), "-U", SUPERUSER, "--auth=trust", "--encoding=UTF8",
                  "--locale=C.UTF-8", "--no-sync")
        self.resume()
        return self

    def pause(self) -> None:
        """Stop the server (``pg_ctl stop -m fast``: clients' connections are closed); the data stays."""
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")
        self._started = False

    def resume(self) -> None:
        """Start the server (again) on the same port and data."""
        options = (f"-c listen_addresses=127.0.0.1 -c port={self.port} -c unix_socket_directories='{self.dir}' "
                   "-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200")
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", options, "-w", "-t", "60", "start")
        self._started = True

    def stop(self) -> None:
        if self._started:
            try:
                self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
            finally:
                self._started = False
        shutil.rmtree(self.dir, ignore_errors=True)

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def create_database(self) -> str:
        """A new empty database; returns its URL."""
        import psycopg

        name = f"t_{uuid.uuid4().hex[:16]}"
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def drop_database(self, url: str) -> None:
        """Drop a database ``create_database`` made (its connections are ended first), so a long
        run does not fill the disk with one database per test; a failure is only a warning."""
        import psycopg

        name = url.rsplit("/", 1)[-1]
        try:
            with psycopg.connect(self.url(), autocommit=True, connect_timeout=10) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        except psycopg.Error as err:
            warnings.warn(f"could not drop the test database {name}: {err}", pytest.PytestWarning, stacklevel=2)
